from django.apps import AppConfig


class BoardConfig(AppConfig):
    name = "board"

    def ready(self):
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from board.models import Board, board_readers
        from core import realtime

        # Who may read `board.<id>`, and every change to it: the access sets follow.
        realtime.register("board", board_readers)
        post_save.connect(_board_changed, sender=Board, dispatch_uid="board.access.save")
        post_delete.connect(_board_changed, sender=Board, dispatch_uid="board.access.delete")
        m2m_changed.connect(
            _members_changed, sender=Board.members.through, dispatch_uid="board.access.members"
        )


def _board_changed(sender, instance, **kwargs):
    from core import realtime

    realtime.changed("board", instance.pk)


def _members_changed(sender, instance, action, reverse, pk_set, **kwargs):
    from core import realtime

    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        realtime.changed("board", instance.pk)
    elif action == "post_clear":
        # user.boards.clear(): which boards is no longer known here; rebuild them all.
        realtime.changed("board", None)
    else:
        for board_id in pk_set:
            realtime.changed("board", board_id)
