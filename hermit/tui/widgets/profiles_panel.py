"""Profiles panel: the saved profiles, activation after a quick test, add/edit/delete/test/history."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, ProgressBar, Static

from hermit.services import tui_support
from hermit.tui.fmt import ago, fit


class ProfileTable(DataTable):
    """The profiles table; Enter asks the panel to activate the selected profile."""

    BINDINGS = [Binding("enter", "activate", "Activate")]

    class Activate(Message):
        pass

    def action_activate(self) -> None:
        self.post_message(self.Activate())


# (key, title, widest it grows to, shown when the panel is at least this wide)
COLUMNS = (
    ("mark", " ", 1, 0),
    ("name", "NAME", 24, 0),
    ("provider", "PROVIDER", 17, 0),
    ("model", "MODEL", 36, 0),
    ("base_url", "BASE URL", 60, 110),
    ("key", "KEY", 14, 0),
    ("override", "OVR", 3, 96),
    ("last_used", "LAST USED", 9, 0),
)
SHRINK_ORDER = ("base_url", "model", "name", "provider", "key")  # who gives way when space is short


class ProfilesPanel(Vertical):
    """Saved profiles; the active one is marked ▶."""

    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("d", "delete", "Delete"),
        Binding("t", "test", "Test"),
        Binding("h", "history", "History"),
        Binding("r", "refresh", "Refresh", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.profiles: list[dict[str, Any]] = []
        self._width = 0

    def compose(self) -> ComposeResult:
        table = ProfileTable(id="profile-table", cursor_type="row", zebra_stripes=False)
        yield table
        yield Static("", id="profile-detail")
        with Horizontal(id="profile-status-row"):
            yield ProgressBar(total=None, show_eta=False, show_percentage=False, id="profile-progress")
            yield Static("", id="profile-status")

    @property
    def table(self) -> ProfileTable:
        return self.query_one(ProfileTable)

    @property
    def selected(self) -> dict[str, Any] | None:
        table = self.table
        if not self.profiles or table.cursor_row is None or table.cursor_row >= len(self.profiles):
            return None
        return self.profiles[table.cursor_row]

    # -- data ---------------------------------------------------------------------------------

    def set_profiles(self, profiles: list[dict[str, Any]]) -> None:
        current = self.selected
        keep_id = current["id"] if current else None
        self.profiles = profiles
        self._rebuild(keep_id)

    def on_resize(self) -> None:
        if self.size.width != self._width:
            self._rebuild(self.selected["id"] if self.selected else None)

    def _layout(self, width: int, rows: list[dict[str, str]]) -> list[tuple[str, str, int]]:
        """Each column as wide as its content (up to a cap); when short of space, the URL and model give way."""
        cols = [(k, t, cap) for k, t, cap, min_w in COLUMNS if width >= min_w]
        widths = {k: min(cap, max([len(t)] + [len(r[k]) for r in rows])) for k, t, cap in cols}
        room = width - 2 * len(cols) - 2  # DataTable cell padding, scrollbar
        for key in SHRINK_ORDER:
            excess = sum(widths.values()) - room
            if excess <= 0:
                break
            if key in widths:
                widths[key] = max(8, widths[key] - excess)
        spare = room - sum(widths.values())
        grow = "base_url" if "base_url" in widths else "model"
        widths[grow] += max(0, spare)
        return [(k, t, widths[k]) for k, t, _ in cols]

    def _rebuild(self, keep_id: int | None = None) -> None:
        table = self.table
        self._width = self.size.width
        now = self.app.clock.now_ms()
        used = self.app.feed.profiles_used
        rows = []
        for p in self.profiles:
            last = max(filter(None, (p.get("last_used_ms"), used.get(p["id"]))), default=None)
            rows.append({
                "mark": "▶" if p["is_active"] else "",
                "name": p["name"],
                "provider": p["provider"],
                "model": p["model"] or "-",
                "base_url": p["base_url"] or "-",
                "key": p["api_key_hint"] or "-",
                "override": "yes" if p["allow_client_model_override"] else "no",
                "last_used": ago(last, now) if last else "never",
            })
        layout = self._layout(self._width or 80, rows)
        table.clear(columns=True)
        for key, title, width in layout:
            table.add_column(title, width=width, key=key)
        cursor = 0
        for i, (p, values) in enumerate(zip(self.profiles, rows)):
            style = "bold" if p["is_active"] else ""
            table.add_row(*[Text(fit(values[k], w), style=style) for k, _, w in layout], key=str(p["id"]))
            if p["id"] == keep_id:
                cursor = i
        if self.profiles:
            table.move_cursor(row=cursor, animate=False)
        self._show_detail()

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        p = self.selected
        detail = self.query_one("#profile-detail", Static)
        if p is None:
            detail.update("No saved profiles. Press a to add one.")
            return
        now = self.app.clock.now_ms()
        used = max(filter(None, (p.get("last_used_ms"), self.app.feed.profiles_used.get(p["id"]))), default=None)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        title = Text(p["name"], "bold")
        if p["is_active"]:
            title.append("  active: new requests use it", "italic")
        grid.add_row("profile", title)
        grid.add_row("upstream", Text(f"{p['provider']} · {p['model']} · {p['base_url']}"))
        limits = f"max tokens {p['default_max_tokens']}" if p.get("default_max_tokens") else "no default max tokens"
        override = "forwards the client's model" if p["allow_client_model_override"] else "enforces its model"
        grid.add_row("settings", Text(f"key {p['api_key_hint'] or 'none'} · {limits} · {override}"))
        if p.get("embedding_model"):
            grid.add_row("embeddings", Text(p["embedding_model"]))
        grid.add_row("last used", ago(used, now) if used else "never")
        detail.update(grid)

    # -- status line ------------------------------------------------------------------------

    def busy(self, message: str) -> None:
        self.query_one("#profile-progress").display = True
        status = self.query_one("#profile-status", Static)
        status.set_classes("-busy")
        status.update(Text(message))

    def result(self, ok: bool, message: str) -> None:
        self.query_one("#profile-progress").display = False
        status = self.query_one("#profile-status", Static)
        status.set_classes("-ok" if ok else "-error")
        status.update(Text(("✔ " if ok else "✖ ") + message))
        if not ok:  # the status line may cut a long reason short: the toast shows all of it
            self.app.notify(message, severity="error", timeout=8)

    # -- actions ----------------------------------------------------------------------------

    @on(ProfileTable.Activate)
    def _activate(self) -> None:
        p = self.selected
        if p is not None:
            self.activate(p["id"], p["name"])

    def action_add(self) -> None:
        self.app.open_profile_form(None)

    def action_edit(self) -> None:
        if self.selected is not None:
            self.app.open_profile_form(self.selected)

    def action_delete(self) -> None:
        p = self.selected
        if p is None:
            return
        if p["is_active"]:
            self.result(False, f"{p['name']} is active; activate another profile before deleting it")
            return
        from hermit.tui.screens.dialogs import ConfirmDialog

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.delete(p["id"], p["name"])

        self.app.push_screen(ConfirmDialog(f"Delete profile {p['name']}?",
                                           f"{p['provider']} · {p['model']} · {p['base_url']}",
                                           "Delete"), confirmed)

    def action_test(self) -> None:
        p = self.selected
        if p is not None:
            self.test(p["id"], p["name"])

    def action_history(self) -> None:
        from hermit.tui.screens.dialogs import HistoryScreen

        self.app.push_screen(HistoryScreen())

    def action_refresh(self) -> None:
        self.app.reload_profiles()

    # -- workers ----------------------------------------------------------------------------

    async def _quick_test(self, profile_id: int, name: str, purpose: str = ""):
        """Quick-test a saved profile, saying what is being tested while it runs."""
        services, db = self.app.services, self.app.db
        profile = await db.call(services.profiles.get, profile_id)
        target = services.profiles.target(profile)
        self.busy(f"Quick test of {name} ({target.provider.name}, {target.model}){purpose}…")
        return await tui_support.quick_test(services, target, db)

    @work(exclusive=True, group="profile-op", exit_on_error=False)
    async def activate(self, profile_id: int, name: str) -> None:
        app = self.app
        services, db = app.services, app.db
        try:
            result = await self._quick_test(profile_id, name, " before switching")
            if not result.ok:
                self.result(False, f"quick test failed, {name} not activated: {result.message}")
                return
            await tui_support.activate(services, db, profile_id, "tui")
            await app.apply_active_profile()
        except Exception as exc:  # noqa: BLE001 - shown, never a crash
            self.result(False, f"could not activate {name}: {tui_support.describe_open_error(exc)}")
            return
        await app.reload_profiles_now()
        self.result(True, f"{name} is active (quick test ok in {result.latency_ms:.0f} ms); "
                          "the next request uses it")

    @work(exclusive=True, group="profile-op", exit_on_error=False)
    async def test(self, profile_id: int, name: str) -> None:
        try:
            result = await self._quick_test(profile_id, name)
        except Exception as exc:  # noqa: BLE001
            self.result(False, f"could not test {name}: {tui_support.describe_open_error(exc)}")
            return
        if result.ok:
            self.result(True, f"{name}: quick test ok, HTTP {result.status_code} in {result.latency_ms:.0f} ms")
        else:
            self.result(False, f"{name}: quick test failed: {result.message}")

    @work(exclusive=True, group="profile-op", exit_on_error=False)
    async def delete(self, profile_id: int, name: str) -> None:
        app = self.app
        try:
            await app.db.call(app.services.profiles.delete, profile_id)
        except Exception as exc:  # noqa: BLE001
            self.result(False, f"could not delete {name}: {tui_support.describe_open_error(exc)}")
            return
        await app.reload_profiles_now()
        self.result(True, f"deleted profile {name}")
