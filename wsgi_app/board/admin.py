from django.contrib import admin

from board.models import Attachment, Board, Card


class CardInline(admin.TabularInline):
    model = Card
    fields = ("title", "column", "position", "version")
    readonly_fields = ("version",)
    extra = 0
    show_change_link = True


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "created_at", "updated_at")
    list_filter = ("created_at", "updated_at")
    search_fields = ("name", "owner__username", "members__username")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    filter_horizontal = ("members",)
    date_hierarchy = "created_at"
    inlines = (CardInline,)


class AttachmentInline(admin.TabularInline):
    model = Attachment
    fields = ("file", "original_name", "content_type", "size", "uploaded_by")
    readonly_fields = fields
    extra = 0
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False  # uploads go through the API, which checks size and type


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ("title", "board", "column", "position", "version", "updated_at")
    list_filter = ("column", "updated_at", "board")
    search_fields = ("title", "description", "board__name")
    list_select_related = ("board",)
    autocomplete_fields = ("board",)
    readonly_fields = ("version", "created_at", "updated_at")
    inlines = (AttachmentInline,)

    def save_model(self, request, obj, form, change):
        # Admin edits are writes too: keep the version (ETag) honest.
        if change:
            obj.version += 1
        super().save_model(request, obj, form, change)


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ("original_name", "card", "content_type", "size", "uploaded_by", "created_at")
    list_filter = ("content_type", "created_at")
    search_fields = ("original_name", "card__title")
    list_select_related = ("card", "uploaded_by")
    readonly_fields = ("file", "content_type", "size", "uploaded_by", "created_at")
