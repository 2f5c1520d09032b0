from django.core import paginator
from django.db.models import Count, Window
from django.db.models.query import ModelIterable, ValuesIterable
from rest_framework import pagination

TOTAL = "_page_total"


class Paginator(paginator.Paginator):
    """Django's paginator, fetching a page and the total count in one query.

    The count rides along as a window (`COUNT(*) OVER ()`) on the page's own rows, so a list
    costs one round trip instead of two. Only an empty page (past the end, or nothing at all)
    asks for the count separately, to tell "no such page" (404) from "empty list".
    """

    def page(self, number):
        if "count" not in self.__dict__ and self._windowable():
            try:
                n = int(number)
            except (TypeError, ValueError):
                n = 0  # not a number: Django's validation answers
            if n >= 1:
                bottom = (n - 1) * self.per_page
                qs = self.object_list.annotate(**{TOTAL: Window(Count("*"))})
                rows = list(qs[bottom : bottom + self.per_page])
                if rows:
                    self.count = _pop_total(rows)
                    return self._get_page(rows, n, self)
        return super().page(number)

    def _windowable(self) -> bool:
        query = getattr(self.object_list, "query", None)
        # Model instances or values() dicts only (a values_list() tuple has no place for it).
        # DISTINCT would count the rows before de-duplication; a sliced or combined query
        # (UNION, ...) cannot take the window as is.
        return (
            getattr(self.object_list, "_iterable_class", None) in (ModelIterable, ValuesIterable)
            and not query.distinct
            and not query.is_sliced
            and query.combinator is None
            and self.orphans == 0
        )


def _pop_total(rows: list) -> int:
    """The window's count, removed from the rows (a dict per row with values(), else an
    attribute of each model instance)."""
    if isinstance(rows[0], dict):
        total = rows[0][TOTAL]
        for row in rows:
            del row[TOTAL]
    else:
        total = getattr(rows[0], TOTAL)
        for row in rows:
            delattr(row, TOTAL)
    return total


class PageNumberPagination(pagination.PageNumberPagination):
    django_paginator_class = Paginator
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
