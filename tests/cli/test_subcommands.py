"""Every subcommand listed in `cli.SUBCOMMANDS` is offered, and a missing one is an error."""

from __future__ import annotations

import pytest

import cli


def test_every_listed_subcommand_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    shown = capsys.readouterr().out
    assert all(f"    {name} " in shown or f"    {name}\n" in shown for name in cli.SUBCOMMANDS), shown


def test_a_subcommand_whose_module_is_missing_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a missing cli.<name> was skipped as "not written yet", so a renamed or uninstalled
    # module silently vanished from `lstmbot --help`.
    monkeypatch.setattr(cli, "SUBCOMMANDS", (*cli.SUBCOMMANDS, "no_such_subcommand"))
    with pytest.raises(ModuleNotFoundError, match=r"cli\.no_such_subcommand"):
        cli.build_parser()
