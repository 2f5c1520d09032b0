from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from board.models import Attachment, Board, Card, Invitation


@extend_schema_field(serializers.ListField(child=serializers.CharField()))
class MemberNames(serializers.Field):
    """Members as usernames. Written only to remove members (by the owner, checked in the
    view): a user joins by accepting an invitation, never by being added."""

    def to_representation(self, members):
        return [user.username for user in members.all()]

    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
            raise serializers.ValidationError("A list of usernames.")
        return data


class BoardSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    members = MemberNames(required=False)

    class Meta:
        model = Board
        fields = ("id", "name", "owner", "members", "created_at", "updated_at")
        read_only_fields = ("id", "owner", "created_at", "updated_at")

    def validate_members(self, names):
        members = self.instance.members.all() if self.instance else []
        current = {user.username: user for user in members}
        if set(names) - set(current):
            # The same answer for any name: it tells nothing about which usernames exist.
            raise serializers.ValidationError(
                "Members join by accepting an invitation (POST /api/boards/{id}/invitations/); "
                "this field can only remove members."
            )
        return [current[name] for name in dict.fromkeys(names)]


class InvitationSerializer(serializers.ModelSerializer):
    username = serializers.CharField(max_length=150)
    invited_by = serializers.SlugRelatedField(
        source="inviter", slug_field="username", read_only=True
    )
    board = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = ("id", "board", "username", "invited_by", "created_at")
        read_only_fields = ("id", "board", "invited_by", "created_at")

    @extend_schema_field(
        inline_serializer(
            "InvitationBoard", {"id": serializers.IntegerField(), "name": serializers.CharField()}
        )
    )
    def get_board(self, invitation) -> dict:
        return {"id": invitation.board_id, "name": invitation.board.name}


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


# The card list's read path (board/api.py): the fields CardSerializer writes, read as values()
# rows and written as they are: the serializer cost more than the queries (issue 13). The test
# test_card_rows_equal_the_serializer keeps the two the same.
CARD_FIELDS = ("id", "board", "title", "description", "column", "position", "version")
ATTACHMENT_FIELDS = ("id", "file", "original_name", "content_type", "size", "created_at")


def card_rows(rows: list[dict], request) -> list[dict]:
    """values() rows of CARD_FIELDS, created_at, updated_at and has_attachments (Exists) as
    the API writes cards; the attachments of the cards that have any in one more query."""
    attached = [row["id"] for row in rows if row["has_attachments"]]
    files: dict[int, list[dict]] = {pk: [] for pk in attached}
    if attached:
        storage = Attachment._meta.get_field("file").storage
        found = Attachment.objects.filter(card_id__in=attached).order_by("id")
        for a in found.values("card_id", *ATTACHMENT_FIELDS):
            files[a["card_id"]].append(
                {
                    "id": a["id"],
                    "url": request.build_absolute_uri(storage.url(a["file"]))
                    if a["file"]
                    else None,
                    **{name: a[name] for name in ATTACHMENT_FIELDS[2:]},
                }
            )
    return [
        {
            **{name: row[name] for name in CARD_FIELDS},
            "attachments": files.get(row["id"], []),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        for row in rows
    ]


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
