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
