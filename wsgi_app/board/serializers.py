from django.contrib.auth import get_user_model
from rest_framework import serializers

from board.models import Attachment, Board, Card

User = get_user_model()


class BoardSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    # Members by username; only the owner may change them (checked in the view).
    members = serializers.SlugRelatedField(
        slug_field="username", many=True, queryset=User.objects.all(), required=False
    )

    class Meta:
        model = Board
        fields = ("id", "name", "owner", "members", "created_at", "updated_at")
        read_only_fields = ("id", "owner", "created_at", "updated_at")


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.FileField(source="file", read_only=True, use_url=True)

    class Meta:
        model = Attachment
        fields = ("id", "url", "original_name", "content_type", "size", "created_at")
        read_only_fields = fields


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False)


class CardSerializer(serializers.ModelSerializer):
    board = serializers.PrimaryKeyRelatedField(read_only=True)
    # Prefetched into a list by card_queryset() (to_attr): no queryset built per card.
    attachments = AttachmentSerializer(many=True, read_only=True, source="attachment_list")

    class Meta:
        model = Card
        fields = (
            "id",
            "board",
            "title",
            "description",
            "column",
            "position",
            "version",
            "attachments",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "board", "version", "attachments", "created_at", "updated_at")


def card_event_data(card: Card) -> dict:
    """The card as events carry it: the API's fields, without request-dependent URLs."""
    return {
        "id": card.pk,
        "board": card.board_id,
        "title": card.title,
        "description": card.description,
        "column": card.column,
        "position": card.position,
        "version": card.version,
        "updated_at": card.updated_at.isoformat(),
    }


def board_event_data(board: Board) -> dict:
    return {"id": board.pk, "name": board.name, "updated_at": board.updated_at.isoformat()}
