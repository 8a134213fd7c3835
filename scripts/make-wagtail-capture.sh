#!/usr/bin/env bash
# Makes captures/wagtail.pcap.gz and captures/wagtail.labels.json: a real Wagtail site
# (the Django CMS, `wagtail start`, SQLite, gunicorn behind nginx) with its read API v2
# (/api/v2/ pages, images, documents) and the admin's HTML form login, driven by
# scripts/wagtail_traffic.py for ~600 s: benign readers, editors, an integration and a
# NAT'ed office from the start, attacks after the 5-minute learning period.
#
# Needs (installs nothing): root, iproute2, ethtool, tcpdump, nginx-light (nginx 1.22),
# wrk, ffuf, dirb (for /usr/share/dirb/wordlists/common.txt), python3 (stdlib, client
# side), gzip, and a virtual environment with Wagtail and gunicorn:
#     python3 -m venv /work/venvs/wagtail
#     /work/venvs/wagtail/bin/pip install wagtail==8.0.1 gunicorn==27.0.1   # pulls Django 5.2.19
# (WAGTAIL_VENV overrides the venv path). hydra is not used: its http-post-form cannot
# fetch Django's per-form CSRF token, so stuffing and brute force are python clients.
#
# Layout: namespace wa-srv holds bridge wa-br (10.83.0.2/24, nginx on :80, gunicorn on
# 127.0.0.1:8000); wa-cli (veth wa-cli-a/wa-cli-b) holds every python-driven client
# address, its primary address 10.83.0.100 is the burst client (wrk runs there);
# wa-scan (10.83.0.103) runs ffuf. MTU 1500, offloads off on every veth and the bridge.
# The site is built, migrated and seeded (60 users; 250 blog posts of which 11 are
# deleted again and 13 stay drafts; 24 images, 12 documents) before tcpdump starts;
# tcpdump -i wa-br ... tcp port 80 captures client<->nginx. Takes ~13 minutes.
# Besides the capture and labels it leaves the driver's request log and the nginx and
# gunicorn logs in /tmp/wagtail-traffic.log.* (WAGTAIL_TRAFFIC_LOG) for checking.
#
# Usage: sudo scripts/make-wagtail-capture.sh [OUT_DIR]   (default: captures/)
set -euo pipefail
{ # the whole script is one compound command: bash parses it all before running it
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/captures}
venv=${WAGTAIL_VENV:-/work/venvs/wagtail}
log_copy=${WAGTAIL_TRAFFIC_LOG:-/tmp/wagtail-traffic.log.jsonl}
SRV_IP=10.83.0.2
NS_SRV=wa-srv
NS_CLI=wa-cli
NS_SCAN=wa-scan
BR=wa-br

for tool in ip ethtool tcpdump nginx wrk ffuf gzip python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ -r /usr/share/dirb/wordlists/common.txt ] || { echo "missing: dirb wordlist" >&2; exit 1; }
[ -x "$venv/bin/wagtail" ] && [ -x "$venv/bin/gunicorn" ] || {
    echo "missing: $venv with wagtail and gunicorn (see the header)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/wa-capture.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    set +e
    [ -n "${tcpdump_pid:-}" ] && kill -INT "$tcpdump_pid" 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ -f "$work/gunicorn.pid" ] && kill "$(cat "$work/gunicorn.pid")" 2>/dev/null
    sleep 1
    for ns in "$NS_CLI" "$NS_SCAN" "$NS_SRV"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
export PYTHONDONTWRITEBYTECODE=1

# ---------------------------------------------------------------- 1. the site -------
site=$work/site
mkdir -p "$site"
"$venv/bin/wagtail" start mysite "$site" >/dev/null
mkdir -p "$site/blog/migrations" "$site/blog/templates/blog" "$site/blog/management/commands"
touch "$site/blog/__init__.py" "$site/blog/migrations/__init__.py" \
    "$site/blog/management/__init__.py" "$site/blog/management/commands/__init__.py"
cat >"$site/blog/apps.py" <<'FILE'
from django.apps import AppConfig


class BlogConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "blog"
FILE
cat >"$site/blog/models.py" <<'FILE'
from django.core.paginator import Paginator
from django.db import models
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey
from taggit.models import TaggedItemBase
from wagtail.api import APIField
from wagtail.fields import RichTextField
from wagtail.models import Page
from wagtail.search import index


class BlogIndexPage(Page):
    intro = RichTextField(blank=True)

    content_panels = Page.content_panels + ["intro"]
    subpage_types = ["blog.BlogPage"]
    api_fields = [APIField("intro")]

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        posts = BlogPage.objects.child_of(self).live().order_by("-date", "-id")
        tag = request.GET.get("tag")
        if tag:
            posts = posts.filter(tags__name=tag)
        context["posts"] = Paginator(posts, 12).get_page(request.GET.get("page"))
        context["tag"] = tag
        return context


class BlogPageTag(TaggedItemBase):
    content_object = ParentalKey("BlogPage", related_name="tagged_items", on_delete=models.CASCADE)


class BlogPage(Page):
    date = models.DateField("Post date")
    intro = models.CharField(max_length=250)
    body = RichTextField(blank=True)
    tags = ClusterTaggableManager(through=BlogPageTag, blank=True)
    feed_image = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    search_fields = Page.search_fields + [index.SearchField("intro"), index.SearchField("body")]
    content_panels = Page.content_panels + ["date", "intro", "body", "tags", "feed_image"]
    parent_page_types = ["blog.BlogIndexPage"]
    subpage_types = []
    api_fields = [
        APIField("date"),
        APIField("intro"),
        APIField("body"),
        APIField("tags"),
        APIField("feed_image"),
        APIField("owner_name"),
    ]

    @property
    def owner_name(self):
        return self.owner.get_full_name() if self.owner else ""
FILE
cat >"$site/blog/templates/blog/blog_index_page.html" <<'FILE'
{% extends "base.html" %}
{% load wagtailcore_tags %}
{% block body_class %}template-blogindexpage{% endblock %}
{% block content %}
<h1>{{ page.title }}</h1>
<div class="intro">{{ page.intro|richtext }}</div>
{% if tag %}<p>Posts tagged “{{ tag }}”</p>{% endif %}
<ul class="posts">
{% for post in posts %}
  <li><a href="{% pageurl post %}">{{ post.title }}</a> <time>{{ post.date }}</time><p>{{ post.intro }}</p></li>
{% endfor %}
</ul>
<nav>{% if posts.has_previous %}<a href="?page={{ posts.previous_page_number }}">Newer</a>{% endif %}
Page {{ posts.number }} of {{ posts.paginator.num_pages }}
{% if posts.has_next %}<a href="?page={{ posts.next_page_number }}">Older</a>{% endif %}</nav>
{% endblock %}
FILE
cat >"$site/blog/templates/blog/blog_page.html" <<'FILE'
{% extends "base.html" %}
{% load wagtailcore_tags %}
{% block body_class %}template-blogpage{% endblock %}
{% block content %}
<article>
<h1>{{ page.title }}</h1>
<p class="meta">{{ page.date }} &middot; {{ page.owner_name }}</p>
<p class="intro">{{ page.intro }}</p>
{{ page.body|richtext }}
{% if page.tags.all.count %}<p class="tags">{% for tag in page.tags.all %}<a href="{% pageurl page.get_parent %}?tag={{ tag }}">{{ tag }}</a> {% endfor %}</p>{% endif %}
</article>
<p><a href="{{ page.get_parent.url }}">Back to the blog</a></p>
{% endblock %}
FILE
cat >"$site/blog/management/commands/seed_blog.py" <<'FILE'
"""Seeds the capture site: 60 user accounts, an Editors and a Moderators group with
page permissions on the blog index, 24 images, 12 documents and 240 blog posts
(some drafts, some deleted to leave gaps in the page ids). Writes the inventory the
traffic driver needs (usernames, passwords, page ids, slugs, owners) as JSON."""
import datetime
import io
import json
import random

from django.contrib.auth.models import Group, Permission
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.images import ImageFile
from django.core.management.base import BaseCommand
from django.utils.text import slugify
from PIL import Image as PILImage
from wagtail.documents.models import Document
from wagtail.images.models import Image
from wagtail.models import GroupPagePermission, Page, Site

from blog.models import BlogIndexPage, BlogPage

FIRST = ("Maria James Aisha Tomasz Priya Lucas Hannah Kenji Olga Daniel Fatima Marco Chloe "
         "Ibrahim Sofia Ethan Nadia Pedro Grace Yusuf Elena Samuel Leila Victor Ingrid Omar "
         "Julia Rafael Mei Patrick Zara Anton Rosa Felix Amara Henrik Lucia Noah Keiko Diego "
         "Freya Tariq Clara Mateo Signe Ravi Nora Stefan Alice Jonas Beatriz Kofi Emma Arjun "
         "Lena Pablo Ruth Hugo Ines Malik").split()
LAST = ("Gonzalez Whitaker Khan Kowalski Raman Moreau Becker Tanaka Petrova Okafor Haddad Rossi "
        "Dubois Hassan Lindqvist Carter Novak Almeida Osei Demir Ivanova Adeyemi Farah Lambert "
        "Johansson Saleh Fischer Costa Chen Murphy Malik Volkov Serrano Wagner Mensah Nielsen "
        "Romano Schmidt Sato Herrera Larsen Qureshi Vidal Ortega Berg Iyer Kaur Horvat Bishop "
        "Meyer Santos Boateng Clarke Nair Vogel Ruiz Levy Marchetti Pereira Aziz").split()
WORDS = ("harbor lantern maple copper river falcon meadow cobalt orchard summit willow ember "
         "granite saffron thistle juniper quartz harvest pepper violet").split()

SUBJECTS = [
    "Sourdough Starters", "Kubernetes Upgrades", "Remote Onboarding", "Trail Running Shoes",
    "Postgres Indexes", "Container Gardening", "Budget Travel in Portugal", "Home Espresso",
    "Night Photography", "Code Review Etiquette", "Composting in Small Spaces", "Bike Commuting",
    "Feature Flags", "Newsletter Design", "Open Source Licences", "Weekend Hiking in the Alps",
    "Rust Error Handling", "Houseplant Care", "Accessible Web Forms", "Electric Cargo Bikes",
    "Incident Postmortems", "Fermented Vegetables", "Solar Panels for Renters", "Podcast Editing",
    "Typography on the Web", "Cold Water Swimming", "Raspberry Pi Projects", "Meal Prep Sundays",
    "Technical Interviews", "Urban Beekeeping", "Database Migrations", "Minimalist Packing",
    "Woodworking for Beginners", "Team Retrospectives", "Caching Strategies", "Film Cameras",
    "Language Learning Apps", "Rainwater Harvesting", "API Versioning", "Slow Travel by Train",
    "Mechanical Keyboards", "Bread Baking Schedules", "Public Speaking", "Load Testing",
    "Birdwatching in the City", "Personal Finance Spreadsheets", "Static Site Generators",
    "Climbing Gyms", "Design Systems", "Reading Habits", "Offline First Apps", "Tea Tasting",
]
PATTERNS = [
    "A Beginner's Guide to {s}", "What We Learned From {s}", "Seven Mistakes to Avoid With {s}",
    "The Hidden Cost of {s}", "Notes on {s}", "Rethinking {s}", "{s}: A Practical Checklist",
    "Getting Started With {s}", "Lessons From a Year of {s}", "Everything You Need to Know About {s}",
    "The Case Against {s}", "Why We Changed Our Mind About {s}", "A Field Guide to {s}",
    "Five Questions About {s}", "{s} on a Shoestring Budget", "How to Get Better at {s}",
]
TAGS = ["engineering", "food", "travel", "garden", "culture", "howto", "opinion", "news", "outdoors", "tools"]
SENTENCES = [
    "We spent the last few months trying this out in practice, and the results surprised us.",
    "Most of the advice you will find online assumes a setup that few of us actually have.",
    "The first attempt went badly, mostly because we underestimated how long it would take.",
    "A small change in routine made a bigger difference than any new piece of equipment.",
    "Readers asked us to follow up on last year's post, so here is what happened next.",
    "If you only take one thing away from this, make it the checklist at the end.",
    "Several colleagues shared their own experience, and their notes are included below.",
    "It turns out that the boring option was the right one for a team of our size.",
    "We measured everything for six weeks before drawing any conclusions.",
    "There is no single right answer here, but there are a few clearly wrong ones.",
]


def rich(paragraphs):
    return "".join("<p>%s</p>" % p for p in paragraphs)


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("inventory")

    def handle(self, *args, **opts):
        rng = random.Random(8302)
        User = get_user_model()
        site = Site.objects.get(is_default_site=True)
        site.hostname, site.port, site.site_name = "10.83.0.2", 80, "Field Notes"
        site.save()
        home = site.root_page
        index = home.add_child(instance=BlogIndexPage(
            title="Blog", slug="blog", intro="<p>Stories, guides and notes from our writers.</p>"))
        index.save_revision().publish()

        # Groups: Editors may add and publish pages under the blog and edit only their own;
        # Moderators may also change and delete anyone's pages there.
        editors, moderators = Group.objects.get(name="Editors"), Group.objects.get(name="Moderators")
        GroupPagePermission.objects.filter(group__in=[editors, moderators]).delete()
        def perm(code):
            return Permission.objects.get(content_type__app_label="wagtailcore", codename=code)
        for code in ("add_page", "publish_page"):
            GroupPagePermission.objects.create(group=editors, page=index, permission=perm(code))
        for code in ("add_page", "change_page", "publish_page", "bulk_delete_page", "lock_page", "unlock_page"):
            GroupPagePermission.objects.create(group=moderators, page=index, permission=perm(code))

        users = []
        pairs = rng.sample([(f, l) for f in FIRST for l in LAST], 60)
        for n, (first, last) in enumerate(pairs):
            style = n % 3
            username = ("%s.%s" % (first, last) if style == 0 else
                        "%s%s" % (first[0], last) if style == 1 else "%s_%s" % (first, last[:3])).lower()
            password = "%s-%s-%02d" % (rng.choice(WORDS).capitalize(), rng.choice(WORDS), rng.randint(10, 99))
            role = "admin" if n == 0 else "moderator" if n <= 3 else "former" if n >= 56 else "editor"
            u = User.objects.create_user(username=username, email="%s.%s@example.org" % (first.lower(), last.lower()),
                                         password=password, first_name=first, last_name=last,
                                         is_active=(role != "former"))
            if role == "admin":
                u.is_superuser = u.is_staff = True
                u.save()
            elif role == "moderator":
                u.groups.add(moderators)
            elif role == "editor":
                u.groups.add(editors)
            users.append({"username": username, "password": password, "email": u.email,
                          "name": "%s %s" % (first, last), "role": role, "id": u.pk})
        writers = [u for u in users if u["role"] in ("editor", "moderator")]
        by_name = {u.username: u for u in User.objects.all()}

        images = []
        for n in range(24):
            buf = io.BytesIO()
            PILImage.new("RGB", (64, 48), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(buf, "PNG")
            title = "%s cover %d" % (rng.choice(SUBJECTS), n + 1)
            img = Image(title=title, file=ImageFile(buf, name="%s.png" % slugify(title)))
            img.save()
            images.append(img)
        documents = []
        for n, s in enumerate(rng.sample(SUBJECTS, 12)):
            name = "%s-notes.txt" % slugify(s)
            doc = Document(title="%s notes" % s, file=ContentFile(("Notes on %s.\n" % s) * 20, name=name))
            doc.save()
            documents.append({"id": doc.pk, "title": doc.title, "filename": doc.file.name.split("/")[-1]})

        titles = rng.sample([p.format(s=s) for s in SUBJECTS for p in PATTERNS], 250)
        posts, deleted = [], []
        day = datetime.date(2021, 3, 1)
        for n, title in enumerate(titles):
            day += datetime.timedelta(days=rng.randint(1, 7))
            owner = by_name[rng.choice(writers)["username"]]
            published = datetime.datetime.combine(day, datetime.time(rng.randint(7, 18), rng.randint(0, 59)),
                                                  tzinfo=datetime.timezone.utc)
            page = BlogPage(title=title, slug=slugify(title), date=day, owner=owner, first_published_at=published,
                            intro=rng.choice(SENTENCES),
                            body=rich(rng.sample(SENTENCES, 4)), feed_image=rng.choice(images + [None] * 3))
            index.add_child(instance=page)
            page.tags.add(*rng.sample(TAGS, rng.randint(1, 3)))
            rev = page.save_revision(user=owner)
            state = "draft" if n % 19 == 7 else "deleted" if n % 23 == 11 else "live"
            if state != "draft":
                rev.publish(user=owner)
            if state == "deleted":
                deleted.append(page.pk)
                page.delete()
                continue
            posts.append({"id": page.pk, "slug": page.slug, "title": title, "owner": owner.username, "live": state == "live"})
        json.dump({"home_id": home.pk, "index_id": index.pk, "users": users, "posts": posts, "deleted_ids": deleted,
                   "images": [i.pk for i in images], "documents": documents, "subjects": SUBJECTS,
                   "patterns": PATTERNS}, open(opts["inventory"], "w"), indent=1)
        self.stdout.write("seeded %d users, %d posts (%d drafts), %d deleted, %d images, %d documents" % (
            len(users), len(posts), sum(not p["live"] for p in posts), len(deleted), len(images), len(documents)))
FILE
cat >"$site/mysite/api.py" <<'FILE'
from wagtail.api.v2.router import WagtailAPIRouter
from wagtail.api.v2.views import PagesAPIViewSet
from wagtail.documents.api.v2.views import DocumentsAPIViewSet
from wagtail.images.api.v2.views import ImagesAPIViewSet

api_router = WagtailAPIRouter("wagtailapi")
api_router.register_endpoint("pages", PagesAPIViewSet)
api_router.register_endpoint("images", ImagesAPIViewSet)
api_router.register_endpoint("documents", DocumentsAPIViewSet)
FILE
cat >"$site/mysite/hashers.py" <<'FILE'
from django.contrib.auth.hashers import PBKDF2PasswordHasher


class RigPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 150_000
FILE
cat >"$site/mysite/settings/local.py" <<'FILE'
from .base import BASE_DIR

SECRET_KEY = "wa-capture-not-a-secret-3f9c1e7d2b"
ALLOWED_HOSTS = ["10.83.0.2", "localhost", "127.0.0.1"]
WAGTAIL_SITE_NAME = "Field Notes"
WAGTAILADMIN_BASE_URL = "http://10.83.0.2"
WAGTAILAPI_BASE_URL = "http://10.83.0.2"
# the read API's page size cap (default 20) raised so that a whole-site export is possible
WAGTAILAPI_LIMIT_MAX = 500
# SQLite under concurrent editors: wait for locks, take the write lock up front, WAL
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
# Django 5.2 hashes with PBKDF2-SHA256 at 1,000,000 iterations; on the shared 2-core rig
# that made each failed login cost ~1 s of CPU and starved every other client during
# the login attacks, so this site uses the same hasher at 150,000 iterations.
PASSWORD_HASHERS = ["mysite.hashers.RigPBKDF2PasswordHasher"]
# request errors (500s) go to gunicorn's error log
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
FILE
# register the blog app and the API (wagtail.api.v2 + rest_framework) and route /api/v2/
"$venv/bin/python" - "$site" <<'PY'
import sys
site = sys.argv[1]
p = site + "/mysite/urls.py"
s = open(p).read()
s = s.replace("from search import views as search_views\n",
              "from search import views as search_views\n\nfrom .api import api_router\n")
s = s.replace('    path("search/", search_views.search, name="search"),\n',
              '    path("search/", search_views.search, name="search"),\n    path("api/v2/", api_router.urls),\n')
open(p, "w").write(s)
p = site + "/mysite/settings/base.py"
s = open(p).read()
s = s.replace('    "home",\n', '    "home",\n    "blog",\n', 1)
s = s.replace('    "wagtail",\n', '    "wagtail",\n    "wagtail.api.v2",\n    "rest_framework",\n', 1)
open(p, "w").write(s)
assert "api_router.urls" in open(site + "/mysite/urls.py").read()
# no Wagtail user bar on the public pages (it added ~5 KB to every page an editor viewed)
p = site + "/mysite/templates/base.html"
s = open(p).read()
assert "{% wagtailuserbar %}" in s
open(p, "w").write(s.replace("{% wagtailuserbar %}", ""))
PY
export DJANGO_SETTINGS_MODULE=mysite.settings.production
manage() { (cd "$site" && "$venv/bin/python" manage.py "$@"); }
manage makemigrations blog -v0
manage migrate -v0
manage collectstatic --noinput -v0
echo "seeding (60 users, 250 posts, images, documents) ..."
manage seed_blog "$work/inventory.json"
chmod -R a+rX "$site"

# ---------------------------------------------------------------- 2. namespaces -----
for ns in "$NS_CLI" "$NS_SCAN" "$NS_SRV"; do ip netns del "$ns" 2>/dev/null || true; done
ip netns add "$NS_SRV"
ip -n "$NS_SRV" link set lo up
ip -n "$NS_SRV" link add "$BR" type bridge
ip -n "$NS_SRV" addr add "$SRV_IP/24" dev "$BR"
ip -n "$NS_SRV" link set "$BR" mtu 1500 up
ip netns exec "$NS_SRV" ethtool -K "$BR" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
client_ns() { # client_ns NAME ADDR... (the first address is the primary one)
    local name=$1
    shift
    ip netns add "$name"
    ip link add "$name-a" type veth peer name "$name-b"
    ip link set "$name-a" netns "$name"
    ip link set "$name-b" netns "$NS_SRV"
    ip -n "$NS_SRV" link set "$name-b" mtu 1500 master "$BR" up
    ip -n "$name" link set lo up
    ip -n "$name" link set "$name-a" mtu 1500 up
    for addr in "$@"; do ip -n "$name" addr add "$addr/24" dev "$name-a"; done
    ip netns exec "$name" ethtool -K "$name-a" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    ip netns exec "$NS_SRV" ethtool -K "$name-b" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
}
# shellcheck disable=SC2046
client_ns "$NS_CLI" $(python3 "$root/scripts/wagtail_traffic.py" --addresses)
client_ns "$NS_SCAN" 10.83.0.103

# ---------------------------------------------------------------- 3. servers --------
(cd "$site" && exec ip netns exec "$NS_SRV" "$venv/bin/gunicorn" mysite.wsgi:application \
    --bind 127.0.0.1:8000 --workers 4 --worker-class gthread --threads 2 \
    --no-control-socket --pid "$work/gunicorn.pid" --error-logfile "$work/gunicorn.log" --access-logfile "$work/gunicorn-access.log") &
pids+=($!)
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
user root;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    access_log $work/nginx/access.log;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000;
    client_max_body_size 10m;
    gzip on;
    gzip_proxied any;
    gzip_min_length 512;
    gzip_comp_level 6;
    gzip_types application/json text/css text/csv text/plain application/javascript;
    server {
        listen $SRV_IP:80;
        server_name $SRV_IP;
        location /static/ { alias $site/static/; }
        location /media/ { alias $site/media/; }
        location / {
            proxy_pass http://127.0.0.1:8000;
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_read_timeout 120s;
        }
    }
}
CONF
ip netns exec "$NS_SRV" nginx -c "$work/nginx.conf"
for _ in $(seq 100); do
    ip netns exec "$NS_CLI" bash -c "exec 3<>/dev/tcp/$SRV_IP/80" 2>/dev/null && break
    sleep 0.2
done
# warm both gunicorn workers over the namespace's loopback (not on the bridge, not captured)
for _ in $(seq 30); do
    ip netns exec "$NS_SRV" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000 && printf "GET /blog/ HTTP/1.0\r\nHost: 10.83.0.2\r\n\r\n" >&3 && cat <&3 >/dev/null' 2>/dev/null || sleep 0.5
done
server_version="Wagtail $("$venv/bin/python" -c 'import wagtail; print(wagtail.__version__)') (PyPI; Django $("$venv/bin/python" -c 'import django; print(django.get_version())'), gunicorn $("$venv/bin/python" -c 'import gunicorn; print(gunicorn.__version__)') gthread 4x2, SQLite) behind nginx $(nginx -v 2>&1 | sed 's|.*nginx/||')"
echo "$server_version"

# ---------------------------------------------------------------- 4. capture --------
pcap=$work/wagtail.pcap
ip netns exec "$NS_SRV" tcpdump -i "$BR" --immediate-mode -s 0 -U -w "$pcap" tcp port 80 2>/dev/null &
tcpdump_pid=$!
sleep 2
mkdir -p "$out"
ip netns exec "$NS_CLI" python3 "$root/scripts/wagtail_traffic.py" "$work/inventory.json" \
    "$out/wagtail.labels.json" "$work/traffic.log" --server-version "$server_version"
sleep 2
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
tcpdump_pid=
cp "$work/traffic.log" "$log_copy"
cp "$work/nginx/access.log" "${log_copy%.jsonl}.nginx-access.log"
cp "$work/gunicorn.log" "${log_copy%.jsonl}.gunicorn.log"
gzip -9 -c "$pcap" >"$out/wagtail.pcap.gz"
ls -l "$out/wagtail.pcap.gz" "$out/wagtail.labels.json"
exit 0
}
