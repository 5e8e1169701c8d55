"""ProfileForm: add or edit a profile; validation messages sit next to their field."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from hermit.core import providers as prov
from hermit.services import tui_support
from hermit.services.profiles import Conflict, ValidationError, clean_fields

TEXT_FIELDS = ("name", "base_url", "model", "api_key", "default_max_tokens")
LABELS = {
    "name": "Name", "provider": "Provider", "base_url": "Base URL", "model": "Model", "api_key": "API key",
    "default_max_tokens": "Max tokens", "allow_client_model_override": "Client model",
}


class ProfileForm(ModalScreen[str | None]):
    """Returns the saved profile's name, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, profile: dict[str, Any] | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.profile = profile
        self.editing = profile is not None
        self._provider = profile["provider"] if profile else "openai"
        self.initial: dict[str, Any] = {}

    def _defaults(self, provider: str) -> tuple[str, str]:
        env = self.app.services.settings.env or {}
        p = prov.get_provider(provider)
        return prov.effective_base_url(p, None, env), prov.effective_model(p, None, env)

    def compose(self) -> ComposeResult:
        p = self.profile or {}
        base_url, model = self._defaults(self._provider)
        values = {
            "name": p.get("name", ""),
            "base_url": p.get("base_url") or base_url,
            "model": p.get("model") or model,
            "api_key": "",
            "default_max_tokens": str(p.get("default_max_tokens") or ""),
        }
        self.initial = {**values, "provider": self._provider,
                        "allow_client_model_override": bool(p.get("allow_client_model_override"))}
        title = f"Edit profile {p['name']}" if self.editing else "Add a profile"
        with Vertical(classes="dialog -form"):
            yield Static(Text(title), classes="dialog-title")
            with VerticalScroll(id="form-fields"):
                yield from self._row("name", Input(values["name"], placeholder="unique name, e.g. openrouter-sonnet",
                                                   id="f-name", compact=True))
                yield from self._row("provider", Select([(n.name, n.name) for n in prov.PROVIDERS],
                                                        value=self._provider, allow_blank=False, id="f-provider",
                                                        compact=True))
                yield from self._row("base_url", Input(values["base_url"], id="f-base_url", compact=True,
                                                       placeholder="empty: the provider's default"))
                yield from self._row("model", Input(values["model"], id="f-model", compact=True,
                                                    placeholder="empty: the provider's default"))
                hint = p.get("api_key_hint")
                yield from self._row("api_key", Input(
                    "", password=True, compact=True, id="f-api_key",
                    placeholder=f"{hint} (empty keeps it)" if hint else "typed masked; empty for none",
                ))
                yield from self._row("default_max_tokens", Input(values["default_max_tokens"], compact=True,
                                                                 placeholder="empty: the request decides",
                                                                 id="f-default_max_tokens"))
                yield from self._row("allow_client_model_override", Checkbox(
                    "forward the client's model", self.initial["allow_client_model_override"],
                    id="f-allow_client_model_override", compact=True))
                with Horizontal(classes="form-row"):
                    yield Label("", classes="form-label")
                    yield Checkbox("skip the quick test", False, id="f-skip_test", compact=True)
                    if not self.editing:
                        yield Checkbox("activate", False, id="f-activate", compact=True)
            yield Static("", id="form-status")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def _row(self, key: str, widget) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(LABELS[key], classes="form-label")
            yield widget
        error = Static("", id=f"e-{key}", classes="field-error")
        error.display = False
        yield error

    def on_mount(self) -> None:
        for inp in self.query(Input):
            inp.cursor_blink = self.app.cursor_blink
        self.query_one("#f-name" if not self.editing else "#f-model", Input).focus()

    # -- provider defaults --------------------------------------------------------------------

    @on(Select.Changed, "#f-provider")
    def _provider_changed(self, event: Select.Changed) -> None:
        new = str(event.value)
        if new == self._provider:
            return
        old_url, old_model = self._defaults(self._provider)
        new_url, new_model = self._defaults(new)
        url, model = self.query_one("#f-base_url", Input), self.query_one("#f-model", Input)
        if not url.value.strip() or url.value.strip() == old_url:
            url.value = new_url
        if not model.value.strip() or model.value.strip() == old_model:
            model.value = new_model
        self._provider = new

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "f-default_max_tokens":
            self.action_save()
        else:
            self.focus_next()

    # -- validation ---------------------------------------------------------------------------

    def _gather(self) -> dict[str, Any]:
        fields: dict[str, Any] = {k: self.query_one(f"#f-{k}", Input).value for k in TEXT_FIELDS}
        fields["provider"] = str(self.query_one("#f-provider", Select).value)
        fields["allow_client_model_override"] = self.query_one("#f-allow_client_model_override", Checkbox).value
        return fields

    def _changes(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Add: every non-empty field. Edit: only what changed (an empty key keeps the stored one)."""
        out = {}
        for key, value in fields.items():
            if isinstance(value, str):
                value = value.strip()
            if key == "api_key" and not value:
                continue
            if self.editing and key != "api_key" and value == self.initial.get(key):
                continue
            if value == "" and not self.editing:
                continue
            if key == "default_max_tokens" and value == "":
                continue  # clearing the limit is not supported by the service yet
            out[key] = value
        return out

    def validate(self, fields: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not self.editing and not str(fields.get("name", "")).strip():
            errors["name"] = "a name is required"
        for key, value in fields.items():
            if key in errors:
                continue
            try:
                clean_fields({key: value}, creating=False)
            except ValidationError as exc:
                errors[key] = str(exc)
        return errors

    def show_errors(self, errors: dict[str, str]) -> None:
        for key in (*TEXT_FIELDS, "provider", "allow_client_model_override"):
            box = self.query_one(f"#e-{key}", Static)
            box.display = key in errors
            box.update(Text("↑ " + errors.get(key, "")))
            try:
                self.query_one(f"#f-{key}").set_class(key in errors, "-invalid")
            except Exception:  # noqa: BLE001 - not every field has a widget to mark
                pass
        if errors:
            first = next(k for k in (*TEXT_FIELDS, "provider") if k in errors)
            self.query_one(f"#f-{first}").focus()

    def status(self, message: str, kind: str) -> None:
        box = self.query_one("#form-status", Static)
        box.set_classes(f"-{kind}")
        box.update(Text(message))

    # -- actions ------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        changes = self._changes(self._gather())
        errors = self.validate(changes)
        self.show_errors(errors)
        if errors:
            self.status("fix the fields marked in red", "error")
            return
        self.save(changes)

    @work(exclusive=True, group="form", exit_on_error=False)
    async def save(self, changes: dict[str, Any]) -> None:
        app = self.app
        services, db = app.services, app.db
        skip = self.query_one("#f-skip_test", Checkbox).value
        activate = not self.editing and self.query_one("#f-activate", Checkbox).value
        try:
            existing = await db.call(services.profiles.get, self.profile["id"]) if self.editing else None
            if not changes and existing is not None:
                self.dismiss(existing.name)
                return
            cleaned = clean_fields(changes, creating=existing is None)
            if existing is None:
                target = await db.call(services.profiles.vet_new, cleaned)
            else:
                target = await db.call(services.profiles.vet_changes, existing, cleaned)
            if not skip and target is not None:
                self.status(f"quick test of {target.provider.name} {target.model} at {target.base_url}…", "busy")
                result = await tui_support.quick_test(services, target, db)
                if not result.ok:
                    self.status(f"quick test failed, nothing saved: {result.message}  "
                                "(tick 'skip the quick test' to save anyway)", "error")
                    return
            if existing is None:
                profile = await db.call(services.profiles.add, cleaned)
            else:
                profile = await db.call(services.profiles.update, existing.id, cleaned)
            if activate:
                await tui_support.activate(services, db, profile.id, "tui")
                await app.apply_active_profile()
        except ValidationError as exc:
            key = next((k for k in (*TEXT_FIELDS, "provider") if str(exc).startswith(k)), None)
            if key:
                self.show_errors({key: str(exc)})
            self.status(str(exc), "error")
            return
        except Conflict as exc:
            self.show_errors({"name": str(exc)})
            self.status(str(exc), "error")
            return
        except Exception as exc:  # noqa: BLE001 - shown in the form
            self.status(tui_support.describe_open_error(exc), "error")
            return
        self.dismiss(profile.name)
