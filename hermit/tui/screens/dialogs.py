"""Small modal screens: confirm, startup problem, help, request details, activation history."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static

from hermit.core.models import LEDGER_JSON_FIELDS
from hermit.tui.feed import LiveRow
from hermit.tui.fmt import duration, money


class ConfirmDialog(ModalScreen[bool]):
    """Yes or no; Enter/y confirms, Escape/n cancels."""

    BINDINGS = [
        Binding("escape,n", "dismiss(False)", "Cancel"),
        Binding("y", "dismiss(True)", "Confirm"),
    ]

    def __init__(self, title: str, detail: str, confirm: str = "OK") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text, self.detail, self.confirm = title, detail, confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text), classes="dialog-title")
            yield Static(Text(self.detail), classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm} (y)", variant="error", id="yes", compact=True)
                yield Button("Cancel (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ProblemDialog(ModalScreen[str]):
    """The proxy cannot start (port taken, database unusable): say why, offer to watch only."""

    BINDINGS = [
        Binding("w", "dismiss('watch')", "Watch only"),
        Binding("q,escape", "dismiss('quit')", "Quit"),
    ]

    def __init__(self, title: str, message: str, can_watch: bool = True) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text, self.message, self.can_watch = title, message, can_watch

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -problem"):
            yield Static(Text(self.title_text), classes="dialog-title")
            yield Static(Text(self.message), classes="dialog-body", id="problem-message")
            with Horizontal(classes="dialog-buttons"):
                if self.can_watch:
                    yield Button("Watch only (w)", variant="primary", id="watch", compact=True)
                yield Button("Quit (q)", id="quit", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "quit")

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "dismiss" and parameters == ("watch",) and not self.can_watch:
            return False
        return True


HELP = (
    ("Everywhere", (
        ("tab / shift+tab", "next / previous panel"),
        ("?", "this help"),
        ("ctrl+t", "light / dark theme"),
        ("q, ctrl+c", "quit: stop accepting, finish in-flight requests, drain the ledger"),
    )),
    ("Profiles", (
        ("enter", "activate the selected profile (after its quick test)"),
        ("a / e", "add / edit a profile"),
        ("d", "delete (asks first; not the active one)"),
        ("t", "quick test without switching"),
        ("h", "history of activations"),
        ("r", "reload"),
    )),
    ("Live", (
        ("↑ ↓ pgup pgdn", "move; moving away from the top stops following"),
        ("home / f", "back to the newest, following"),
        ("enter", "details of the request"),
        ("p", "pause / resume"),
        ("s", "status filter: all, ok, errors, in flight"),
        ("m", "model filter (cycles through models seen)"),
        ("/", "search text; esc clears every filter"),
    )),
    ("Analytics", (
        ("1 2 3 4 5", "last hour, day, week, month, all time"),
        ("[ ]", "previous / next period"),
        ("r", "refresh now (it also refreshes as traffic arrives)"),
    )),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, style="bold")
        table.add_column()
        for section, keys in HELP:
            table.add_row(Text(section, "bold underline"), "")
            for key, what in keys:
                table.add_row(key, what)
            table.add_row("", "")
        with Vertical(classes="dialog -wide"):
            yield Static("Hermit keys", classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Static(table)
            yield Static("esc closes", classes="dialog-hint")


class RequestDetail(ModalScreen[None]):
    """Every field of one request."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, row: LiveRow, clock) -> None:
        super().__init__()
        self.row, self.clock = row, clock

    def compose(self) -> ComposeResult:
        row = self.row
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, style="bold")
        table.add_column(overflow="fold")
        started = self.clock.local(row.started_ms).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + f" {self.clock.tz_name}"
        if row.entry is None:
            table.add_row("state", "in flight")
            table.add_row("request_id", row.request_id)
            table.add_row("started", started)
            table.add_row("running for", duration(self.clock.now_ms() - row.started_ms))
            for name in ("endpoint", "stream", "provider", "model", "profile", "client"):
                table.add_row(name, str(getattr(row, name)))
            table.add_row("completion so far", str(row.completion_tokens))
        else:
            data = row.entry.to_json()
            data["created_at"] = started
            data["latency_ms"] = duration(row.entry.latency_ms)
            data["cost_usd"] = money(row.entry.cost_usd) + ("" if row.entry.cost_usd is not None else " (unpriced)")
            for name in ("request_id", *[f for f in LEDGER_JSON_FIELDS if f != "request_id"]):
                value = data.get(name)
                if value is None:
                    continue
                style = "bold" if name == "error" else ""
                table.add_row(name, Text(str(value), style))
        title = "Request · " + ("in flight" if row.entry is None else f"HTTP {row.status}")
        with Vertical(classes="dialog -wide" + (" -error" if row.failed else "")):
            yield Static(title, classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Static(table)
            yield Static("esc closes", classes="dialog-hint")


class HistoryScreen(ModalScreen[None]):
    """Activations, newest first (read on the database thread)."""

    BINDINGS = [Binding("escape,q,h", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Static("Profile activations", classes="dialog-title")
            yield DataTable(id="history-table", cursor_type="row")
            yield Static("esc closes", classes="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for title in ("WHEN", "PROFILE", "ID", "SOURCE"):
            table.add_column(title, key=title.lower())
        self.load()

    @work(exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        app = self.app
        try:
            items = await app.db.call(app.services.profiles.history, 200)
        except Exception as exc:  # noqa: BLE001
            self.query_one(".dialog-hint", Static).update(Text(f"cannot read history: {exc}"))
            return
        table = self.query_one(DataTable)
        for item in items:
            when = app.clock.local(item.activated_at).strftime("%Y-%m-%d %H:%M:%S")
            table.add_row(when, Text(item.profile_name), str(item.profile_id), item.source)
        if not items:
            self.query_one(".dialog-hint", Static).update("no activations yet · esc closes")
        table.focus()
