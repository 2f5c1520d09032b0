from django_filters.rest_framework import DjangoFilterBackend


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipped when the query string names none of the view's
    filters: building and validating an empty filter form was ~1.8 ms of a ~6.6 ms card list
    (cProfile, docs/benchmarks.md), for a result that is the queryset unchanged."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not any(
            name in request.query_params for name in filterset_class.base_filters
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)
