"""The HTML report: its data from real runs, the command line, and the page in a real headless Chromium.

The browser tests need Chromium (Debian's ``chromium``, installed by .ci/run).
Without it they are skipped, except under CI (``CI`` set), where a missing
browser fails them.  Each browser test keeps a screenshot under
build/artifacts/ and prints its path.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import make_strategy
from blkrace.report import html
from blkrace.scenarios.registry import get
from browser import Browser, find_chromium

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "artifacts"


def run_cli(*args, hashseed="0"):
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    return subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, timeout=600
    )


def traced_finding(name, variant, schedules=2000):
    """The first finding of a PCT campaign (seed 0), replayed with its trace."""
    s = get(name)
    build = s.builder(s.variants[variant])
    found = explore(build, make_strategy("pct", 0), schedules, max_steps=s.max_steps)
    assert found.findings, f"{name} {variant}: nothing found"
    res, _, _ = replay(build, found.findings[0].choices, max_steps=s.max_steps)
    return res


def page_of(name, variant):
    res = traced_finding(name, variant)
    return html.replay_page(name, variant, res, "br1.x", "test"), res


# ------------------------------------------------------------------ the data


def test_hotplug_run_has_stop_machine_cpuhp_irq_and_offline_bands():
    data, _ = page_of("hctx-drain", "buggy")
    view = data["findings"][0]
    entries = view["entries"]
    sm = [b["label"] for b in view["bands"] if b["band"] == "stop_machine"]
    # Two CPUs go down, each through one stop_machine: its four stages in order, twice.
    stages = ["MULTI_STOP_PREPARE", "MULTI_STOP_DISABLE_IRQ", "MULTI_STOP_RUN", "MULTI_STOP_EXIT"]
    assert sm == stages * 2
    hp2 = [b["label"] for b in view["bands"] if b["band"] == "cpuhp" and b["cpu"] == 2]
    assert hp2[:2] == ["cpu_down", "teardown CPUHP_AP_ACTIVE"]
    assert "startup CPUHP_AP_ACTIVE" in hp2
    (off2,) = [b for b in view["bands"] if b["band"] == "offline" and b["cpu"] == 2]
    assert entries[off2["first"]]["text"] == "cpu2: offline (cleared from cpu_online_mask)"
    assert entries[off2["last"]]["text"] == "cpu2: online"
    for b in view["bands"]:
        if b["band"] == "irqs_off":
            assert entries[b["first"]]["text"].startswith(f"cpu{b['cpu']}: interrupts off")
            assert entries[b["last"]]["text"].startswith(f"cpu{b['cpu']}: interrupts restored")
    # Every band lies inside the run, first before last.
    assert all(0 <= b["first"] <= b["last"] < len(entries) for b in view["bands"])


def test_deadlock_page_carries_the_cycle_the_blocked_stacks_and_source_lines():
    data, res = page_of("nvme-mpath-freeze", "buggy")
    view = data["findings"][0]
    kinds = [v["kind"] for v in view["violations"]]
    assert kinds[0] == "deadlock"
    (dl,) = [v for v in view["violations"] if v["kind"] == "deadlock"]
    tasks = {e["task"] for e in dl["cycle"]}
    # The submitter sleeps on the frozen queue, the reset work on the SRCU grace period.
    waits = {e["waits_on"] for e in dl["cycle"]}
    # (seed 002: the submitter sleeps in blk_queue_enter() or in blk_mq_get_tag())
    assert any(w.endswith("->mq_freeze_wq") or "bitmap_tags.ws[" in w for w in waits)
    assert any("srcu grace period" in w for w in waits)
    assert {e["held_by"] for e in dl["cycle"]} == tasks
    assert view["entries"][dl["entry"]]["text"] == f"deadlock: {dl['message']}"
    frames = data["frames"]
    blocked = {b["task"]: [frames[i][0] for i in b["stack"]] for b in view["blocked"]}
    assert tasks <= set(blocked)
    assert any("blk_queue_enter" in st or "blk_mq_get_tag" in st for st in blocked.values())
    assert any("synchronize_srcu" in st for st in blocked.values())
    # Each frame's source line is the model's own text.
    for _fn, file, line, _off in frames:
        assert f"{file}:{line}" in data["sources"]
    assert any("await" in text for text in data["sources"].values())
    assert len(view["entries"]) == len(res.trace)


def test_the_page_is_self_contained_and_its_data_cannot_end_the_script():
    data, _ = page_of("budget-rerun", "buggy")
    data["findings"][0]["violations"][0]["message"] += " </script><script>alert(1)</script> <!--"
    page = html.render(data)
    assert page.count("</script>") == 2  # the data block's and the code's
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and '<link rel="stylesheet"' not in page
    start = page.index('id="blkrace-data">') + len('id="blkrace-data">')
    back = json.loads(page[start : page.index("</script>", start)])
    assert back["findings"][0]["violations"][0]["message"].endswith("</script><script>alert(1)</script> <!--")


def test_html_from_the_command_line_is_the_same_in_any_process(tmp_path):
    out = tmp_path / "check.html"
    proc = run_cli("check", "budget-rerun", "--variant", "buggy", "--json", "--html", str(out), hashseed="1")
    assert proc.returncode == 1, proc.stderr
    token = json.loads(proc.stdout)["results"][0]["violations"][0]["token"]
    assert "I/O stall" in out.read_text()
    pages = []
    for seed in ("2", "31337"):
        path = tmp_path / f"replay-{seed}.html"
        proc = run_cli("replay", token, "--html", str(path), hashseed=seed)
        assert proc.returncode == 1, proc.stderr
        pages.append(path.read_bytes())
    assert pages[0] == pages[1]


def test_an_unwritable_html_path_is_bad_input_before_the_run(tmp_path):
    proc = run_cli("check", "budget-rerun", "--variant", "buggy", "--html", str(tmp_path / "no" / "such" / "r.html"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("blkrace: error: cannot write the HTML report to ")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""  # refused before exploring


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("chromium is not installed, and CI is set: the HTML report must be tested in a browser")
        pytest.skip("chromium is not installed (apt-get install chromium); set CI to make this a failure")
    with Browser(path) as browser:
        yield browser


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """One page per scenario, written by the command line."""
    d = tmp_path_factory.mktemp("html")
    out = {}
    for name in ("budget-rerun", "hctx-drain", "nvme-mpath-freeze"):
        path = d / f"{name}.html"
        proc = run_cli("check", name, "--variant", "buggy", "--html", str(path))
        assert proc.returncode == 1, proc.stderr
        out[name] = path
    return out


def load(browser, path):
    browser.console.clear()
    browser.open(path.as_uri())
    assert browser.errors() == [], browser.errors()


def keep(browser, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = browser.screenshot(str(ARTIFACTS / f"{name}.png"))
    print(f"screenshot: {path}")
    return path


def test_browser_shows_the_stall_and_a_click_opens_a_backtrace(chromium, pages):
    load(chromium, pages["budget-rerun"])
    banner = chromium.eval("document.querySelector('#finding').innerText")
    assert "STALL" in banner.upper() and "never dispatched" in banner
    # The finding is highlighted in the timeline and selected in the panel at load.
    assert chromium.eval("document.querySelectorAll('#timeline tr.violation').length") >= 1
    assert chromium.eval("document.querySelector('#timeline tr.sel').classList.contains('violation')")
    # Click the first step where the dispatcher puts the budget back: its backtrace opens.
    index = chromium.eval(
        "(() => { const d = JSON.parse(document.getElementById('blkrace-data').textContent).findings[0];"
        " return d.entries.findIndex(e => e.kind === 'step' && e.text.startsWith('scsi_mq_put_budget')); })()"
    )
    assert index >= 0
    chromium.click(f"#timeline tr[data-i='{index}'] td.act")
    panel = chromium.eval("document.querySelector('#panel').innerText")
    assert "Call Trace".upper() in panel.upper()
    assert "blk_mq_do_dispatch_sched" in panel and "scsi_mq_put_budget" in panel
    assert chromium.eval("document.querySelector('#timeline tr.sel').dataset.i") == str(index)
    assert re.search(r"blkrace/\S+\.py:\d+", chromium.eval("document.querySelector('#source-line').innerText"))
    keep(chromium, "html-report-budget-rerun")
    # The keyboard steps to the next entry shown.
    chromium.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": "j", "text": "j"})
    after = int(chromium.eval("document.querySelector('#timeline tr.sel').dataset.i"))
    assert after > index
    assert chromium.errors() == []


def test_browser_draws_hotplug_bands_and_filters_by_cpu_and_task(chromium, pages):
    load(chromium, pages["hctx-drain"])
    tags = chromium.eval("[...document.querySelectorAll('#timeline .tag')].map(t => t.textContent)")
    assert "MULTI_STOP_RUN" in tags and "teardown CPUHP_AP_ACTIVE" in tags and "interrupts off" in tags
    assert chromium.eval("document.querySelectorAll('#timeline td.lane.off').length") > 0
    assert chromium.eval("document.querySelectorAll('#overview svg rect').length") > 10
    shown = "[...document.querySelectorAll('#timeline tr.e:not(.hidden)')]"
    before = chromium.eval(f"{shown}.length")
    # Untick CPU2: its entries and its column go.
    chromium.click("#filters input[data-f='cpu'][data-v='2']")
    lanes = chromium.eval(f"{shown}.map(r => r.querySelector('td.act')).filter(Boolean).map(td => td.dataset.lane)")
    assert lanes and "2" not in lanes
    assert chromium.eval(f"{shown}.length") < before
    assert chromium.eval("getComputedStyle(document.querySelector(\"th[data-lane='2']\")).display") == "none"
    # No task at all: only the clock's lines are left.
    chromium.click("#filters legend button:last-of-type")
    assert chromium.eval(f"{shown}.every(r => r.querySelector('td.full'))")
    chromium.click("#filters legend button:first-of-type")
    chromium.click("#filters input[data-f='cpu'][data-v='2']")
    assert chromium.eval(f"{shown}.length") == before
    # The overview over virtual time: the two hotplug operations squeezed before the 30 s timeout.
    ticks = "[...document.querySelectorAll('#overview svg text')].map(t => t.textContent)"
    assert any(t.startswith("step ") for t in chromium.eval(ticks))
    chromium.eval(
        "(() => { const s = document.querySelector('#overview select'); s.value = 'time';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    times = [t for t in chromium.eval(ticks) if t.endswith(" ms")]
    assert times and times[0] == "0.000 ms" and float(times[-1].split()[0]) > 30000  # past the 30 s timeout
    chromium.eval(
        "(() => { const s = document.querySelector('#overview select'); s.value = 'step';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    # The dying CPU's entry where stop_machine runs the teardown: its stopper's backtrace.
    index = chromium.eval(
        "(() => { const d = JSON.parse(document.getElementById('blkrace-data').textContent).findings[0];"
        " return d.entries.findIndex(e => e.text === 'cpu2: offline (cleared from cpu_online_mask)'); })()"
    )
    chromium.click(f"#timeline tr[data-i='{index}'] td.act")
    panel = chromium.eval("document.querySelector('#panel').innerText")
    assert "take_cpu_down" in panel and "multi_cpu_stop" in panel
    keep(chromium, "html-report-hctx-drain")
    assert chromium.errors() == []


def test_browser_opens_a_backtrace_from_the_wait_for_cycle(chromium, pages):
    load(chromium, pages["nvme-mpath-freeze"])
    nodes = chromium.eval("[...document.querySelectorAll('#cycle .node')].map(n => n.dataset.task)")
    assert len(nodes) >= 3 and nodes[0] == nodes[-1]
    submitter = next(n for n in nodes if n.startswith("fio"))
    chromium.click(f"#cycle .node[data-task='{submitter}']")
    panel = chromium.eval("document.querySelector('#panel').innerText")
    assert f"task {submitter}" in panel
    assert "__schedule" in panel
    assert ("blk_queue_enter" in panel and "mq_freeze_wq" in panel) or ("blk_mq_get_tag" in panel and ".wait" in panel)
    keep(chromium, "html-report-nvme-mpath-freeze")
    assert chromium.errors() == []


def test_browser_draws_a_clean_check_and_a_clean_replay(chromium, tmp_path, pages):
    check = tmp_path / "clean.html"
    proc = run_cli("check", "budget-rerun", "--variant", "fixed", "-n", "20", "--html", str(check))
    assert proc.returncode == 0, proc.stderr
    load(chromium, check)
    assert "No violation found" in chromium.eval("document.body.innerText")
    # The buggy schedule on the fixed kernel: the run drawn, marked clean.
    token = chromium_token(pages["budget-rerun"])
    replayed = tmp_path / "replay-fixed.html"
    proc = run_cli("replay", token, "--variant", "fixed", "--html", str(replayed))
    assert proc.returncode == 0, proc.stderr
    load(chromium, replayed)
    banner = chromium.eval("document.querySelector('#finding').innerText")
    assert "no violation in this run" in banner and "replaying a buggy token on fixed: step " in banner
    assert chromium.eval("document.querySelectorAll('#timeline tr.e').length") > 50
    assert chromium.errors() == []


def chromium_token(page):
    text = page.read_text()
    start = text.index('id="blkrace-data">') + len('id="blkrace-data">')
    return json.loads(text[start : text.index("</script>", start)])["findings"][0]["token"]
