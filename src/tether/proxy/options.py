"""``tether capture``'s settings, each field with its flag (the upstream and the output are
the command's own arguments)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.flags import Kind, flag

__all__ = ["CaptureOptions"]


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """Where the proxy listens and forwards, what it records, and what it mirrors."""

    upstream: str
    output: str
    listen: str = field(
        default="127.0.0.1:8081",
        metadata=flag(
            "--listen",
            metavar="HOST:PORT",
            help="Where clients connect (port 0: any free one, said on stderr).",
        ),
    )
    via: bool = field(
        default=False,
        metadata=flag("--via", kind=Kind.SWITCH, help="Add a Via header both ways."),
    )
    keep_header: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "--keep-header",
            multiple=True,
            metavar="NAME",
            help="Also expect this response header's value (Location always is).",
        ),
    )
    ignore_json_path: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "--ignore-json-path",
            multiple=True,
            metavar="PATH",
            help="Leave this field of JSON bodies out of the expectation ($.a.b, $.items[*].id).",
        ),
    )
    only: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "--only", multiple=True, metavar="PATH-PREFIX", help="Record only these paths."
        ),
    )
    exclude: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "--exclude", multiple=True, metavar="PATH-PREFIX", help="Never record these paths."
        ),
    )
    max_body: int = field(
        default=1 << 20,
        metadata=flag(
            "--max-body",
            kind=Kind.SIZE,
            help="Record bodies up to this size: a larger response body is expected by its "
            "sha256, a larger request body is forwarded but not recorded.",
        ),
    )
    limit: int | None = field(
        default=None,
        metadata=flag(
            "--limit",
            kind=Kind.COUNT,
            metavar="N",
            default_in_words="none",
            help="Stop after writing N records.",
        ),
    )
    keep_secrets: bool = field(
        default=False,
        metadata=flag(
            "--keep-secrets",
            kind=Kind.SWITCH,
            help="Record the values of Authorization, Cookie and --redact-header headers "
            "(else a placeholder that tether run -H fills).",
        ),
    )
    redact_header: tuple[str, ...] = field(
        default=(),
        metadata=flag(
            "--redact-header",
            multiple=True,
            metavar="NAME",
            help="Treat this header as a secret too.",
        ),
    )
    mirror: str | None = field(
        default=None,
        metadata=flag(
            "--mirror",
            metavar="URL",
            help="Send each request to this candidate too, after the client has its answer, "
            "and report how its responses differ.",
        ),
    )
    mirror_secondary: str | None = field(
        default=None,
        metadata=flag(
            "--mirror-secondary",
            metavar="URL",
            help="A second instance of the upstream: fields that differ from it are noise.",
        ),
    )
    mirror_unsafe: bool = field(
        default=False,
        metadata=flag(
            "--mirror-unsafe",
            kind=Kind.SWITCH,
            help="Mirror methods other than GET and HEAD too (the candidate's writes are yours).",
        ),
    )
    json_path: str | None = field(
        default=None,
        metadata=flag(
            "--json",
            metavar="PATH",
            param="json_path",
            help="Write the mirror's differences as JSON ('-': stdout, with -o elsewhere).",
        ),
    )
    client_timeout: float = field(
        default=10.0,
        metadata=flag(
            "--client-timeout",
            kind=Kind.POSITIVE_SECONDS,
            help="A client's request must arrive whole within this (else 408).",
        ),
    )
    client_idle_timeout: float = field(
        default=60.0,
        metadata=flag(
            "--client-idle-timeout",
            kind=Kind.SECONDS,
            help="Close a client connection idle this long (0: never).",
        ),
    )
    max_head: int = field(
        default=64 * 1024,
        metadata=flag(
            "--max-request-head",
            kind=Kind.SIZE,
            help="A client's request head over this gets 431.",
        ),
    )
    max_idle_per_host: int = field(
        default=64,
        metadata=flag(
            "--max-idle-per-host",
            kind=Kind.COUNT,
            help="Upstream connections kept, and the most ever open (requests past them wait).",
        ),
    )

    @property
    def mirrors(self) -> bool:
        """Whether requests are mirrored."""
        return self.mirror is not None
