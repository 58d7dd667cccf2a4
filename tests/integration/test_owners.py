"""Owner attribution end to end (issue 14, docs/owners.md): [[owners]] rules resolve every token
at each poll into the token_inventory view, `tokens --owner/--team` select by them, and an owner
change is an owner_changed event in the history — caused by a description change or by new rules.
Real parts: tokenwarden-sim over HTTP, the tokenwarden binary, its SQLite file."""
import csv
import io
import json

import twtest

RULES = r'''
[[owners]]
name = "pinned"
token_id = "{pinned}"
owner = "bob"
team = "security"
contact = "bob@example.com"

[[owners]]
name = "by-description"
description_regex = "\\(owner: (?P<owner>[^)]+)\\)"
team = "data"
contact = "data-team@example.com"
labels = {{ pager = "data-oncall" }}

[[owners]]
name = "ci"
description_glob = "ci-*"
owner = "ci-bot"
team = "platform"
'''

READ = [{"action": "read", "resource": "db"}]


def owned_cluster(tmp_path, sim_factory, tw_factory):
    sim = sim_factory()
    ids = {
        "alice": sim.create("loader (owner: alice)", READ)["id"],
        "ci": sim.create("ci-build", READ)["id"],
        "none": sim.create("mystery token", READ)["id"],
        # A hostile capture (a control character) does not count: the rule still gives its own
        # team, and no owner.
        "hostile": sim.create("x (owner: \x1b[31mevil)", READ)["id"],
        # The first matching rule wins: pinned by id although its description names alice.
        "pinned": sim.create("pinned (owner: alice)", READ)["id"],
    }
    tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                    extra=RULES.format(pinned=ids["pinned"]))
    return sim, tw, ids


def owners_in_db(tw):
    return {row[0]: tuple(row[1:]) for row in
            tw.query("SELECT token_id, owner, team, owner_rule FROM token_inventory")}


def test_every_token_is_resolved_listed_and_selected(tmp_path, sim_factory, tw_factory):
    sim, tw, ids = owned_cluster(tmp_path, sim_factory, tw_factory)
    tw.poll(check=0)

    owners = owners_in_db(tw)
    assert owners[ids["alice"]] == ("alice", "data", "by-description")
    assert owners[ids["ci"]] == ("ci-bot", "platform", "ci")
    assert owners[ids["pinned"]] == ("bob", "security", "pinned")
    assert owners[ids["none"]] == (None, None, None)
    assert owners[ids["hostile"]] == (None, "data", "by-description")
    contact = tw.query("SELECT contact FROM token_owners WHERE token_id = ?", (ids["pinned"],))
    assert contact == [("bob@example.com",)]

    # New tokens get no owner_changed event: their owner is part of the inventory from the start.
    assert tw.events(kinds=["owner_changed"]) == []

    listed = {t["token_id"]: t for t in tw.json("tokens")}
    assert listed[ids["alice"]]["owner"] == "alice" and listed[ids["alice"]]["team"] == "data"
    assert listed[ids["alice"]]["owner_rule"] == "by-description"
    assert listed[ids["none"]]["owner"] is None and listed[ids["none"]]["owner_rule"] is None

    assert {t["token_id"] for t in tw.json("tokens", "--team", "data")} == {ids["alice"],
                                                                         ids["hostile"]}
    assert [t["token_id"] for t in tw.json("tokens", "--owner", "ci-bot")] == [ids["ci"]]
    assert tw.json("tokens", "--owner", "alice", "--team", "platform") == []
    assert tw.json("tokens", "--owner", "nobody") == []
    # --at replays the inventory; the owners shown are the current ones.
    at = tw.json("tokens", "--at", "0d", "--team", "security")
    assert [t["token_id"] for t in at] == [ids["pinned"]] and at[0]["owner"] == "bob"

    rows = list(csv.DictReader(io.StringIO(tw.run("tokens", "--format", "csv", check=0).stdout,
                                           newline="")))
    assert {r["token_id"]: r["team"] for r in rows}[ids["ci"]] == "platform"
    table = tw.run("tokens", check=0).stdout
    header = table.splitlines()[0].split()
    assert "OWNER" in header and "TEAM" in header
    assert "\x1b" not in table


def test_a_description_change_moves_the_token_to_its_new_owner(tmp_path, sim_factory, tw_factory):
    sim, tw, ids = owned_cluster(tmp_path, sim_factory, tw_factory)
    tw.poll(check=0)
    sim.put_token(ids["alice"], {"description": "loader (owner: carol)"})
    sim.put_token(ids["none"], {"description": "ci-nightly"})
    tw.poll(check=0)

    assert owners_in_db(tw)[ids["alice"]] == ("carol", "data", "by-description")
    assert owners_in_db(tw)[ids["none"]] == ("ci-bot", "platform", "ci")
    changes = {e["token_id"]: e for e in history(tw, "owner_changed")}
    assert set(changes) == {ids["alice"], ids["none"]}
    alice = changes[ids["alice"]]["detail"]
    assert alice["owner"] == "carol" and alice["previous_owner"] == "alice"
    assert alice["team"] == "data" and alice["previous_team"] == "data"
    assert alice["cause"] == "description_changed"
    adopted = changes[ids["none"]]["detail"]
    assert adopted["previous_owner_rule"] is None and adopted["owner_rule"] == "ci"
    # The description change itself comes first, in the same poll.
    seqs = {e["event"]: e["seq"] for e in history(tw, "token_updated", "owner_changed")
            if e["token_id"] == ids["alice"]}
    assert seqs["token_updated"] < seqs["owner_changed"]

    # A poll that changes nothing records no owner event.
    tw.poll(check=0)
    assert len(history(tw, "owner_changed")) == 2
    assert tw.run("verify", check=0).returncode == 0


def test_new_rules_reassign_known_tokens_once(tmp_path, sim_factory, tw_factory):
    sim, tw, ids = owned_cluster(tmp_path, sim_factory, tw_factory)
    tw.poll(check=0)
    text = tw.config_path.read_text().replace('team = "platform"', 'team = "release"')
    text += '\n[[owners]]\nname = "rest"\ndescription_glob = "*"\nteam = "admins"\n'
    tw.config_path.write_text(text)
    tw.poll(check=0)

    owners = owners_in_db(tw)
    assert owners[ids["ci"]] == ("ci-bot", "release", "ci")
    assert owners[ids["none"]] == (None, "admins", "rest")
    assert owners[ids["alice"]] == ("alice", "data", "by-description")
    changes = {e["token_id"]: e["detail"] for e in history(tw, "owner_changed")}
    assert set(changes) == {ids["ci"], ids["none"]}
    assert all(d["cause"] == "rules_changed" for d in changes.values())
    assert changes[ids["ci"]]["previous_team"] == "platform"

    tw.poll(check=0)
    assert len(history(tw, "owner_changed")) == 2

    # Rules removed: the tokens they owned become unowned, recorded once more.
    tw.config_path.write_text(text[:text.index("[[owners]]")])
    tw.poll(check=0)
    assert set(owners_in_db(tw).values()) == {(None, None, None)}
    assert len(history(tw, "owner_changed")) == 2 + 5


def test_check_config_refuses_bad_owner_rules(tmp_path, tw_factory, sim_factory):
    sim = sim_factory()
    bad = {
        'description_regex = "(?P<owner>["\nteam = "x"': "description_regex",
        'team = "x"': "needs a matcher",
        'description_glob = "*"': "assigns nobody",
        'description_glob = "*"\nteam = "x"\nlabels = { team = "y" }': "set by tokenwarden",
        'description_glob = "*"\nowner = "two\\nlines"': "one line",
    }
    for i, (body, message) in enumerate(bad.items()):
        tw = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")],
                        extra="[[owners]]\n" + body + "\n", name=f"tw{i}")
        proc = tw.run("check-config")
        assert proc.returncode == 2, (body, proc.stdout, proc.stderr)
        assert message in proc.stderr + proc.stdout, (body, proc.stderr)
        assert "owners[0]" in proc.stderr + proc.stdout
    dup = tw_factory([twtest.clustered_block("c1", sim, tmp_path / "t")], name="dup",
                     extra='[[owners]]\nname = "a"\ntoken_id = "x"\nteam = "t"\n' * 2)
    proc = dup.run("check-config")
    assert proc.returncode == 2 and "used by another owner rule" in proc.stderr + proc.stdout


def history(tw, *events):
    args = ["history"]
    for e in events:
        args += ["--event", e]
    rows = tw.json(*args)
    for r in rows:
        r["detail"] = json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]
    return rows
