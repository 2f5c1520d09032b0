from django.conf import settings
from django.db import models
from django.db.models import Q


class BoardQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Boards the user owns or is a member of.

        A subquery instead of a join on members: no duplicate rows, so no DISTINCT.
        """
        member_of = Board.members.through.objects.filter(user_id=user.pk).values("board_id")
        return self.filter(Q(owner_id=user.pk) | Q(pk__in=member_of))


class Board(models.Model):
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_boards"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="boards", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BoardQuerySet.as_manager()

    class Meta:
        ordering = ("-updated_at", "-id")

    def __str__(self) -> str:
        return self.name

    @property
    def topic(self) -> str:
        return f"board.{self.pk}"

    def is_member(self, user) -> bool:
        return self.owner_id == user.pk or self.members.filter(pk=user.pk).exists()


def board_readers(ids) -> dict[int, set[int]]:
    """Who may read `board.<id>` (core.realtime's hook): the owner and the members."""
    boards = Board.objects.all() if ids is None else Board.objects.filter(pk__in=list(ids))
    readers = {pk: {owner} for pk, owner in boards.values_list("pk", "owner_id")}
    members = Board.members.through.objects.filter(board__in=boards)
    for board_id, user_id in members.values_list("board_id", "user_id"):
        readers[board_id].add(user_id)
    return readers


class Invitation(models.Model):
    """An owner's offer of membership; the invitee becomes a member only by accepting it.

    Kept by username, whether or not such a user exists: the inviter learns nothing about
    which usernames exist, and sees the same list either way."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="invitations")
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    username = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = (
            models.UniqueConstraint(fields=("board", "username"), name="one_invitation_per_user"),
        )
        indexes = (models.Index(fields=["username"]),)

    def __str__(self) -> str:
        return f"{self.username} to {self.board}"


class Card(models.Model):
    class Column(models.TextChoices):
        TODO = "todo", "To do"
        DOING = "doing", "Doing"
        DONE = "done", "Done"

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="cards")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=10_000)
    column = models.CharField(max_length=5, choices=Column, default=Column.TODO)
    position = models.PositiveIntegerField(default=0)
    # Bumped on every write; the ETag. A PATCH/DELETE with a stale If-Match gets 412.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("column", "position", "id")
        indexes = (models.Index(fields=["board", "column", "position"]),)

    def __str__(self) -> str:
        return self.title


def attachment_path(instance, filename: str) -> str:
    # The name is ours (random, with the sniffed extension), never the client's.
    return f"attachments/{instance.card.board_id}/{filename}"


class Attachment(models.Model):
    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=255)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.original_name
