"""Registers the blog app and the read API (wagtail.api.v2 + rest_framework), routes /api/v2/
and drops the Wagtail user bar from the public pages of a `wagtail start` site.

Usage: patch_site.py SITE_DIR
"""
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
