"""The campaign store: one SQLite file (WAL) holding what campaigns explored and found.

A file holds one or more campaigns (one per scenario variant of a command),
each named and pinned to its parameters (the recipe, the members, the budget,
the stop rules).  Every unit of a campaign is written in one transaction, in
plan order, as it is merged: its runs per strategy, the frontier a
systematic member hands to its next unit, and its findings with their
signature (the violation's origin: its kind plus the blocked stacks, the
wait-for cycle or the model location), the runs that showed each, and the
first token.  A campaign killed at any point (SIGKILL included) resumes from
the units on disk: at most the units in flight are run again, and nothing is
counted twice, because a unit is on disk entirely or not at all.

A bounded proof (``check --prove``) keeps one row per preemption bound it
finished (exhausted, out of time, cut or with a finding), written as that
bound ends; a resumed proof takes the bounds exhausted without a finding
from the file and searches the rest again.

The frontier is stored pickled: open only stores you made yourself.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import time

from blkrace.engine.parallel import UnitResult
from blkrace.engine.violations import Violation

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    name TEXT PRIMARY KEY,
    params TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS units (
    campaign TEXT NOT NULL,
    uid INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    runs INTEGER NOT NULL,
    pruned INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    exhausted INTEGER NOT NULL,
    cut INTEGER NOT NULL,
    elapsed_s REAL NOT NULL,
    frontier BLOB,
    saved REAL NOT NULL,
    PRIMARY KEY (campaign, uid)
);
CREATE TABLE IF NOT EXISTS unit_findings (
    campaign TEXT NOT NULL,
    uid INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    signature TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    violation TEXT NOT NULL,
    choices TEXT NOT NULL,
    prefix TEXT NOT NULL,
    steps INTEGER NOT NULL,
    elapsed_s REAL NOT NULL,
    count INTEGER NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (campaign, uid, signature)
);
CREATE TABLE IF NOT EXISTS proof_bounds (
    campaign TEXT NOT NULL,
    bound INTEGER NOT NULL,
    schedules INTEGER NOT NULL,
    elapsed_s REAL NOT NULL,
    exhausted INTEGER NOT NULL,
    cut INTEGER NOT NULL,
    found TEXT NOT NULL,
    saved REAL NOT NULL,
    PRIMARY KEY (campaign, bound)
);
"""


class StoreError(Exception):
    """A store that cannot be used as asked: one line for the user."""


class CampaignStore:
    def __init__(self, path):
        self.path = str(path)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a campaign store ({exc})") from None

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def campaign(self, name, params, *, resume=False, token_of=None):
        """The campaign ``name`` of this file, to run with ``params`` (a JSON-able dict).

        A new campaign is created; an existing one is continued only with
        ``resume`` and the same parameters.  ``token_of(choices)`` names a
        finding's run for ``blkrace replay``.
        """
        text = json.dumps(params, sort_keys=True)
        row = self.db.execute("SELECT params FROM campaigns WHERE name = ?", (name,)).fetchone()
        if row is not None:
            if not resume:
                raise StoreError(
                    f"{self.path} already holds the campaign {name}: pass --resume to continue it, or give another file"
                )
            if row[0] != text:
                old = json.loads(row[0])
                diff = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
                raise StoreError(
                    f"{self.path} holds the campaign {name} with other parameters ({', '.join(diff)}); "
                    "resume it with the arguments it was started with"
                )
        else:
            self.db.execute("INSERT INTO campaigns VALUES (?, ?, ?)", (name, text, time.time()))
        return StoredCampaign(self, name, token_of)

    # ------------------------------------------------------------- reading

    def campaigns(self):
        return [
            (name, json.loads(params))
            for name, params in self.db.execute("SELECT name, params FROM campaigns ORDER BY created, name")
        ]

    def explored(self, name):
        """Runs and pruned runs per strategy, and the units on disk, of one campaign."""
        rows = self.db.execute(
            "SELECT strategy, SUM(runs), SUM(pruned), COUNT(*), MAX(exhausted) FROM units WHERE campaign = ? "
            "GROUP BY strategy ORDER BY MIN(uid)",
            (name,),
        ).fetchall()
        return [{"strategy": s, "runs": r, "pruned": p, "units": u, "exhausted": bool(e)} for s, r, p, u, e in rows]

    def findings(self, name):
        """One row per signature, in the order the campaign found them: the first run, and the count."""
        rows = self.db.execute(
            "SELECT uid, pos, signature, kind, message, count, token FROM unit_findings WHERE campaign = ? "
            "ORDER BY uid, pos",
            (name,),
        ).fetchall()
        offsets = self._offsets(name)
        out = {}
        for uid, pos, sig, kind, message, count, token in rows:
            if sig in out:
                out[sig]["count"] += count
                continue
            strategy = self.db.execute(
                "SELECT strategy FROM units WHERE campaign = ? AND uid = ?", (name, uid)
            ).fetchone()[0]
            out[sig] = {
                "signature": sig,
                "kind": kind,
                "message": message,
                "count": count,
                "strategy": strategy,
                "schedule_index": offsets.get(uid, 0) + pos,
                "token": token,
            }
        return list(out.values())

    def proof_bounds(self, name):
        """The bounds of the campaign's proof on disk, lowest first."""
        rows = self.db.execute(
            "SELECT bound, schedules, elapsed_s, exhausted, cut, found FROM proof_bounds WHERE campaign = ? "
            "ORDER BY bound",
            (name,),
        ).fetchall()
        return [
            {
                "bound": b,
                "schedules": n,
                "elapsed_s": t,
                "exhausted": bool(e),
                "cut": c,
                "found": json.loads(f),
            }
            for b, n, t, e, c, f in rows
        ]

    def save_proof_bound(self, name, step):
        """One finished bound of a proof (a ``scale.ProofStep``), in one statement."""
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO proof_bounds VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    step.bound,
                    step.schedules,
                    step.elapsed_s,
                    int(step.exhausted),
                    step.cut,
                    json.dumps(sorted({f.violation.kind for f in step.findings})),
                    time.time(),
                ),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write the proof ({exc})") from None

    def _offsets(self, name):
        offsets, total = {}, 0
        for uid, runs in self.db.execute("SELECT uid, runs FROM units WHERE campaign = ? ORDER BY uid", (name,)):
            offsets[uid] = total
            total += runs
        return offsets


class StoredCampaign:
    """One campaign of a store, as ``run_campaign`` uses it."""

    def __init__(self, store, name, token_of):
        self.store = store
        self.name = name
        self.token_of = token_of

    def completed(self):
        """Every unit on disk: uid -> UnitResult (findings and frontier included)."""
        db = self.store.db
        out = {}
        for uid, strategy, runs, pruned, steps, exhausted, cut, elapsed, frontier in db.execute(
            "SELECT uid, strategy, runs, pruned, steps, exhausted, cut, elapsed_s, frontier FROM units "
            "WHERE campaign = ? ORDER BY uid",
            (self.name,),
        ):
            res = UnitResult(uid, strategy, runs, pruned, steps, bool(exhausted), cut, elapsed_s=elapsed)
            res.state = pickle.loads(frontier) if frontier is not None else None
            out[uid] = res
        for uid, pos, sig, violation, choices, prefix, steps, elapsed, count in db.execute(
            "SELECT uid, pos, signature, violation, choices, prefix, steps, elapsed_s, count FROM unit_findings "
            "WHERE campaign = ? ORDER BY uid, pos",
            (self.name,),
        ):
            v = Violation(**json.loads(violation))
            res = out[uid]
            res.findings.append(
                (pos, v, tuple(json.loads(choices)), steps, elapsed, tuple(tuple(p) for p in json.loads(prefix)))
            )
            res.counts[sig] = count
        return out

    def save(self, res):
        """One unit, entirely or not at all."""
        db = self.store.db
        frontier = pickle.dumps(res.state) if res.state is not None else None
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.name,
                    res.uid,
                    res.label,
                    res.runs,
                    res.pruned,
                    res.steps,
                    int(res.exhausted),
                    res.cut,
                    res.elapsed_s,
                    frontier,
                    time.time(),
                ),
            )
            for pos, v, choices, steps, elapsed, prefix in res.findings:
                token = ""
                if self.token_of is not None:
                    token = " ".join(self.token_of(c) for c in (*prefix, choices))
                violation = {
                    "kind": v.kind,
                    "message": v.message,
                    "origin": v.origin,
                    "step": v.step,
                    "time_ns": v.time_ns,
                    "detail": [str(line) for line in v.detail],
                }
                db.execute(
                    "INSERT INTO unit_findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        self.name,
                        res.uid,
                        pos,
                        v.origin,
                        v.kind,
                        v.message,
                        json.dumps(violation),
                        json.dumps(list(choices)),
                        json.dumps([list(p) for p in prefix]),
                        steps,
                        elapsed,
                        res.counts.get(v.origin, 1),
                        token,
                    ),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
