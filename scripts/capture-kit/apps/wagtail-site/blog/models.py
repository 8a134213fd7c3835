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
