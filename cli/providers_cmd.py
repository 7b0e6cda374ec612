"""`kling-relay providers`: what each provider can do, as a table or JSON."""

from __future__ import annotations

import argparse
import json

from shared.providers.capabilities import Capabilities
from shared.services.catalog import provider_catalog
from shared.settings import get_settings

COLUMNS: list[tuple[str, str]] = [
    ("provider", "provider"),
    ("callbacks", "callbacks"),
    ("durations", "durations"),
    ("ratios", "aspect_ratios"),
    ("sound", "sound"),
    ("quality", "qualities"),
    ("first", "first_frame"),
    ("last", "last_frame"),
    ("negative", "negative_prompt"),
    ("cfg", "cfg_scale"),
    ("outputs", "max_outputs"),
    ("prompt", "max_prompt_chars"),
    ("motion control", "motion_control"),
]


def _cell(caps: Capabilities, field: str) -> str:
    value = getattr(caps, field)
    if field == "motion_control":
        return "no" if value is None else (",".join(value.qualities) or "yes")
    if field == "sound" and value and caps.sound_requires_pro:
        return "pro only"
    if field == "last_frame" and value and caps.last_frame_requires_pro:
        return "pro, no sound" if caps.last_frame_excludes_sound else "pro"
    if field == "callbacks" and value:
        return "signed" if caps.signed_callbacks else "unsigned"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def render_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    catalog = provider_catalog(get_settings())
    if args.json:
        print(json.dumps(catalog.model_dump(mode="json"), indent=2))
        return 0
    rows = [[title for title, _ in COLUMNS]]
    for entry in catalog.providers:
        rows.append([_cell(entry.capabilities, field) for _, field in COLUMNS])
    print(render_table(rows))
    notes = [(e.name, note) for e in catalog.providers for note in e.capabilities.notes]
    notes += [
        (
            e.name,
            f"motion control ({e.capabilities.motion_control.model}): billed {e.capabilities.motion_control.billing}",
        )
        for e in catalog.providers
        if e.capabilities.motion_control is not None
    ]
    if notes:
        print("\nnotes:")
        for name, note in notes:
            print(f"  {name}: {note}")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("providers", help="print what each provider can do")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)
