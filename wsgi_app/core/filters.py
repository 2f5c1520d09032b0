from django_filters.rest_framework import DjangoFilterBackend


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, with no filter set when the query string names none of the
    view's filters (the queryset is then returned unchanged): building and validating an empty
    filter form on every list cost 1.1-1.6 ms of Django's 6.4-8.7 ms CPU per card list
    (docs/benchmarks.md)."""

    def get_filterset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not any(
            name in request.query_params for name in filterset_class.base_filters
        ):
            return None
        return filterset_class(**self.get_filterset_kwargs(request, queryset, view))
