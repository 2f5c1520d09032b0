"""The example domain's JSON API: boards, cards, attachments, invitations."""

import secrets

import filetype
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, generics, mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from board.filters import CardFilter
from board.models import Attachment, Board, Card, Invitation
from board.serializers import (
    CARD_FIELDS,
    AttachmentSerializer,
    AttachmentUploadSerializer,
    BoardSerializer,
    CardSerializer,
    InvitationSerializer,
    board_event_data,
    card_event_data,
    card_rows,
)
from core.errors import PayloadTooLarge, PreconditionFailed, TooManyRequests
from core.events import publish_on_commit
from core.schema import ErrorSerializer

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='The card\'s ETag, e.g. "3": the write happens only if it is still current.',
)

# Types a browser renders harmlessly from /media/ (served with nosniff, never executed).
ALLOWED_UPLOAD_TYPES = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
}


def card_queryset():
    # to_attr: a plain list per card, no queryset built per card while serialising.
    return Card.objects.prefetch_related(
        Prefetch(
            "attachments", queryset=Attachment.objects.order_by("id"), to_attr="attachment_list"
        )
    )


def etag(card: Card) -> str:
    return f'"{card.version}"'


def check_if_match(request, card: Card) -> None:
    """412 when If-Match names another version than the card's current one."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return
    wanted = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if etag(card) not in wanted:
        raise PreconditionFailed(
            f"Card {card.pk} is at version {card.version}, not {header.strip()}: "
            "fetch it again and reapply your change."
        )


@extend_schema_view(
    list=extend_schema(summary="Boards the user owns or is a member of"),
    create=extend_schema(summary="Create a board (you become its owner)"),
)
class BoardViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = BoardSerializer
    http_method_names = ("get", "post", "patch", "delete", "head", "options")
    search_fields = ("name",)
    ordering_fields = ("name", "created_at", "updated_at", "id")
    filterset_fields = ()

    def get_queryset(self):
        # Others' boards are 404, not 403: their existence is not disclosed.
        return (
            Board.objects.visible_to(self.request.user)
            .select_related("owner")
            .prefetch_related("members")
        )

    def perform_create(self, serializer):
        board = serializer.save(owner=self.request.user)
        publish_on_commit(
            board.topic, "board.created", self.request.user.pk, board_event_data(board)
        )

    def perform_update(self, serializer):
        board = serializer.instance
        if "members" in serializer.validated_data and board.owner_id != self.request.user.pk:
            raise exceptions.PermissionDenied("Only the board's owner may change its members.")
        board = serializer.save()
        publish_on_commit(
            board.topic, "board.updated", self.request.user.pk, board_event_data(board)
        )

    def perform_destroy(self, instance):
        if instance.owner_id != self.request.user.pk:
            raise exceptions.PermissionDenied("Only the board's owner may delete it.")
        topic, data = instance.topic, {"id": instance.pk}
        instance.delete()
        publish_on_commit(topic, "board.deleted", self.request.user.pk, data)


class BoardCardList(generics.ListCreateAPIView):
    """GET|POST /api/boards/{id}/cards/"""

    serializer_class = CardSerializer
    filterset_class = CardFilter
    search_fields = ("title", "description")
    ordering_fields = ("position", "created_at", "updated_at", "title", "id")

    def get_board(self) -> Board:
        if not hasattr(self, "_board"):
            self._board = get_object_or_404(
                Board.objects.visible_to(self.request.user), pk=self.kwargs["board_id"]
            )
        return self._board

    queryset = Card.objects.none()  # for the schema generator; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        # Visibility as a subquery of the same query: no separate board lookup per list.
        visible = Board.objects.visible_to(self.request.user).values("pk")
        return Card.objects.filter(board_id=self.kwargs["board_id"], board__in=visible)

    def list(self, request, *args, **kwargs):
        """The same page as CardSerializer would write, from values() rows (card_rows): one
        query for the page, its count and whether each card has attachments (core's
        paginator adds the count), plus one for the attachments when any card has some."""
        rows = self.get_queryset().values(
            *CARD_FIELDS,
            "created_at",
            "updated_at",
            has_attachments=Exists(Attachment.objects.filter(card=OuterRef("pk"))),
        )
        page = self.paginate_queryset(self.filter_queryset(rows))
        response = self.get_paginated_response(card_rows(page, request))
        if not response.data["count"]:
            self.get_board()  # nothing listed: 404 if the board is not there for this user
        return response

    def perform_create(self, serializer):
        board = self.get_board()
        card = serializer.save(board=board)
        card.attachment_list = []  # what card_queryset() prefetches; a new card has none
        publish_on_commit(board.topic, "card.created", self.request.user.pk, card_event_data(card))

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        response["ETag"] = f'"{response.data["version"]}"'
        response["Location"] = f"/api/cards/{response.data['id']}/"
        return response


@extend_schema_view(
    partial_update=extend_schema(parameters=[IF_MATCH]),
    destroy=extend_schema(parameters=[IF_MATCH]),
)
class CardDetail(
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """GET|PATCH|DELETE /api/cards/{id}/ with optimistic concurrency (ETag / If-Match)."""

    serializer_class = CardSerializer
    lookup_value_regex = "[0-9]{1,18}"  # else 404: not a bigint id (was a 500 on PATCH/DELETE)
    http_method_names = ("get", "patch", "delete", "head", "options")

    def get_queryset(self):
        visible = Board.objects.visible_to(self.request.user).values("pk")
        return card_queryset().filter(board__in=visible)

    def retrieve(self, request, *args, **kwargs):
        card = self.get_object()
        # A client polling a card it already has gets 304 with no body.
        if etag(card) in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(card)})
        return Response(self.get_serializer(card).data, headers={"ETag": etag(card)})

    def partial_update(self, request, *args, **kwargs):
        with transaction.atomic():
            # The row lock makes check-then-write atomic: two PATCHes with the same If-Match
            # cannot both pass; the second waits, then sees the new version and gets 412.
            card = get_object_or_404(
                self.get_queryset().select_for_update(of=("self",)), pk=kwargs["pk"]
            )
            check_if_match(request, card)
            serializer = self.get_serializer(card, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            card = serializer.save(version=card.version + 1)
            publish_on_commit(
                f"board.{card.board_id}", "card.updated", request.user.pk, card_event_data(card)
            )
        return Response(serializer.data, headers={"ETag": etag(card)})

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            card = get_object_or_404(
                self.get_queryset().select_for_update(of=("self",)), pk=kwargs["pk"]
            )
            check_if_match(request, card)
            data = {"id": card.pk, "board": card.board_id, "version": card.version}
            card.delete()
            publish_on_commit(f"board.{data['board']}", "card.deleted", request.user.pk, data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CardAttachmentList(generics.ListCreateAPIView):
    """GET|POST /api/cards/{id}/attachments/ (multipart, field `file`)."""

    parser_classes = (parsers.MultiPartParser,)
    serializer_class = AttachmentSerializer

    def get_card(self) -> Card:
        visible = Board.objects.visible_to(self.request.user).values("pk")
        return get_object_or_404(Card.objects.filter(board__in=visible), pk=self.kwargs["card_id"])

    queryset = Attachment.objects.none()  # for the schema generator

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return Attachment.objects.filter(card=self.get_card())

    @extend_schema(request={"multipart/form-data": AttachmentUploadSerializer})
    def post(self, request, *args, **kwargs):
        limit = settings.ATTACHMENT_MAX_BYTES
        # Refuse on the declared length before reading a byte of the body.
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > limit + 64 * 1024:
            raise PayloadTooLarge(f"Attachments may be at most {limit} bytes.")
        card = self.get_card()
        upload = AttachmentUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file: UploadedFile = upload.validated_data["file"]
        if file.size > limit:
            raise PayloadTooLarge(f"Attachments may be at most {limit} bytes.")
        kind = filetype.guess(file.read(262))  # judged by the bytes, not the name or header
        file.seek(0)
        if kind is None or kind.mime not in ALLOWED_UPLOAD_TYPES:
            raise exceptions.UnsupportedMediaType(
                kind.mime if kind else file.content_type,
                detail="Allowed attachment types: " + ", ".join(sorted(ALLOWED_UPLOAD_TYPES)),
            )
        original_name = (file.name or "")[:255]
        file.name = f"{secrets.token_urlsafe(16)}.{ALLOWED_UPLOAD_TYPES[kind.mime]}"
        with transaction.atomic():
            attachment = Attachment.objects.create(
                card=card,
                file=file,
                original_name=original_name,
                content_type=kind.mime,
                size=file.size,
                uploaded_by=request.user,
            )
        data = AttachmentSerializer(attachment, context=self.get_serializer_context()).data
        publish_on_commit(
            f"board.{card.board_id}",
            "attachment.created",
            request.user.pk,
            {"card": card.pk, **{k: data[k] for k in ("id", "content_type", "size")}},
        )
        return Response(data, status=status.HTTP_201_CREATED)


# Pending invitations: a cap per board and per inviter, so sharing cannot be used to flood
# other users' invitation lists.
MAX_PENDING_PER_BOARD = 20
MAX_PENDING_PER_INVITER = 100
INVITED = "If a user of that name exists and is not a member yet, they can now accept."


def owned_board(request, board_id: int) -> Board:
    """The board if the user owns it; 403 for a member, 404 for anyone else."""
    board = get_object_or_404(Board.objects.visible_to(request.user), pk=board_id)
    if board.owner_id != request.user.pk:
        raise exceptions.PermissionDenied("Only the board's owner may manage invitations.")
    return board


class BoardInvitationList(generics.ListCreateAPIView):
    """GET|POST /api/boards/{id}/invitations/: the owner invites by username.

    The answer is the same whether or not the username exists (202, the same body); the
    list shows every name invited, so it tells nothing either."""

    serializer_class = InvitationSerializer
    queryset = Invitation.objects.none()  # for the schema generator

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        board = owned_board(self.request, self.kwargs["board_id"])
        return board.invitations.select_related("inviter", "board")

    @extend_schema(
        responses={
            202: inline_serializer("InvitationSent", {"detail": serializers.CharField()}),
            429: OpenApiResponse(ErrorSerializer, "Too many pending invitations"),
        }
    )
    def post(self, request, *args, **kwargs):
        board = owned_board(request, self.kwargs["board_id"])
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        name = body.validated_data["username"]
        with transaction.atomic():
            Board.objects.select_for_update().get(pk=board.pk)  # one count at a time
            if (
                board.invitations.count() >= MAX_PENDING_PER_BOARD
                or Invitation.objects.filter(inviter=request.user).count()
                >= MAX_PENDING_PER_INVITER
            ):
                raise TooManyRequests(
                    "Too many pending invitations: wait for answers or withdraw some first."
                )
            already = name == board.owner.username or board.members.filter(username=name).exists()
            if not already:
                Invitation.objects.get_or_create(
                    board=board, username=name, defaults={"inviter": request.user}
                )
        return Response({"detail": INVITED}, status=status.HTTP_202_ACCEPTED)


class BoardInvitationDetail(generics.DestroyAPIView):
    """DELETE /api/boards/{id}/invitations/{invitation_id}/: the owner withdraws it."""

    serializer_class = InvitationSerializer
    queryset = Invitation.objects.none()

    def get_object(self):
        board = owned_board(self.request, self.kwargs["board_id"])
        return get_object_or_404(board.invitations, pk=self.kwargs["invitation_id"])


class MyInvitationList(generics.ListAPIView):
    """GET /api/invitations/: the invitations waiting for the current user's answer."""

    serializer_class = InvitationSerializer
    queryset = Invitation.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return Invitation.objects.filter(username=self.request.user.get_username()).select_related(
            "inviter", "board"
        )


def my_invitation(request, invitation_id: int) -> Invitation:
    mine = Invitation.objects.filter(username=request.user.get_username())
    return get_object_or_404(mine.select_for_update(), pk=invitation_id)


@extend_schema(request=None, responses={200: BoardSerializer})
@api_view(["POST"])
def accept_invitation(request, invitation_id: int):
    """The invitee's consent: they become a member (and may read the board's live events)."""
    with transaction.atomic():
        invitation = my_invitation(request, invitation_id)
        board = invitation.board
        board.members.add(request.user)
        invitation.delete()
    board = Board.objects.prefetch_related("members").select_related("owner").get(pk=board.pk)
    return Response(BoardSerializer(board).data)


@extend_schema(request=None, responses={204: None})
@api_view(["POST"])
def decline_invitation(request, invitation_id: int):
    with transaction.atomic():
        my_invitation(request, invitation_id).delete()
    return Response(status=status.HTTP_204_NO_CONTENT)
