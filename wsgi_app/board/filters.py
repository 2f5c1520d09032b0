import django_filters

from board.models import Card


class CardFilter(django_filters.FilterSet):
    class Meta:
        model = Card
        fields = {"column": ["exact", "in"], "position": ["gte", "lte"]}  # noqa: RUF012
