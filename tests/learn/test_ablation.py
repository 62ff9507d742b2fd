"""The ablation study (recipe/srpo/cpu/ablation.py) and its integrity verifier (verify_ablation.py), on a study
workspace built from the real reward and the count task's texts; every verifier check is broken once and FAILs."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from recipe.srpo.cpu import ablation as ab
from recipe.srpo.cpu import verify_ablation as va
from recipe.srpo.metrics import PREFILTER_PREFIX, reflection_metrics
from recipe.srpo.reward_manager import token_counts
from srpo_data.offline import count_task as ct
from srpo_reward import compute_score


class WordTokenizer:
    """A stand-in policy tokenizer: one token per whitespace-separated word."""

    def encode(self, text, add_special_tokens=False):
        return text.split()


TOK = WordTokenizer()
SETTINGS = ab.Settings(seeds=(0, 1), test_rows=4, eval_samples=2, grpo_steps=2, prompts_per_step=2)


def response(q: str, first_right: bool, final_right: bool, well_formed: bool = True) -> tuple[str, str]:
    words, target = ct.parse_question(q)
    count = words.count(target)
    first = ct.first_attempt(target, count if first_right else count + 1)
    second = ct.second_attempt(words, target, None if final_right else 0)
    text = f"{first} <reflection>{ct.reflection(target)}</reflection> {second}"
    return (text if well_formed else text.replace("</reflection>", "")), str(count)


def questions(n, seed=0):
    return [q.replace("<image>", "") for q, _, _ in ct.rows("test", n, seed)]


def rows_of(kinds, qs, samples):
    """Eval-style rows: kinds[i] = (first right, final right, well formed) of the i-th sampled response."""
    out, kinds = [], iter(kinds)
    for i, q in enumerate(qs):
        for mode, k in [("greedy", 1), ("sample", samples)]:
            for j in range(k):
                fr, fi, wf = next(kinds)
                text, gt = response(q, fr, fi, wf)
                out.append({"qid": f"q{i}", "mode": mode, "k": j, "ground_truth": gt, "response": text,
                            "response_tokens": len(text.split()), "first_tokens": 0})
    return out


def gate_kinds(n):
    """Per 20 responses: 9 right-right, 1 right-wrong, 7 wrong-right, 1 wrong-wrong, 2 malformed (wrong):
    well-formed 0.9, first 0.5, final 0.8, harm 0.1: inside every band."""
    block = [(1, 1, 1)] * 9 + [(1, 0, 1)] + [(0, 1, 1)] * 7 + [(0, 0, 1)] + [(0, 0, 0)] * 2
    return [tuple(map(bool, k)) for k in (block * (n // 20 + 1))[:n]]


def console_line(step, infos):
    metrics = {**reflection_metrics(infos, PREFILTER_PREFIX), "response_length/mean": 60.0}
    return f"(SRPOTaskRunner pid=7) step:{step} - " + " - ".join(f"{k}:{v}" for k, v in metrics.items())


def build_study(ws, settings=SETTINGS):
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "study.json").write_text(json.dumps(settings.to_json()))
    qs = questions(settings.test_rows)
    gate = rows_of(gate_kinds(20 * settings.test_rows), qs * 5, 3)
    with open(ws / "gate_rollouts.jsonl", "w") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in gate))
    (ws / "gate.json").write_text(json.dumps(ab.gate_numbers(gate)))
    train = questions(8, seed=5)
    for seed in settings.seeds:
        order = random.Random(seed).sample(train, len(train))  # the seed's drawn prompt order, shared by its arms
        for a, arm in enumerate(settings.arms):
            rd = ws / "runs" / arm / f"seed{seed}"
            (rd / "rollouts").mkdir(parents=True)
            (rd / "cmd.json").write_text(json.dumps({"arm": arm, "seed": seed, "overrides": ab.grpo_overrides(
                settings, arm, seed, rd / "rollouts")}))
            kept = [q for i, q in enumerate(order) if (i + a) % 4]  # each arm's filter keeps another subsequence
            lines = []
            for step in (1, 2):
                dump, infos = [], []
                for q in kept[(step - 1) * 3: step * 3]:
                    for fr, fi in ((True, True), (False, True), (True, False)):
                        text, gt = response(q, fr, fi)
                        counts = token_counts(TOK, text)
                        out = compute_score("count_task", text, gt, {"srpo_token_counts": counts}, **ab.ARMS[arm])
                        infos.append(out)
                        dump.append({"input": f"user {q}", "output": text, "gts": gt, "score": out["score"], "step": step})
                (rd / "rollouts" / f"{step}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dump))
                lines.append(console_line(step, infos))
            (rd / "grpo.log").write_text("\n".join(lines) + "\n")
            rng = random.Random(f"{arm}{seed}")
            kinds = [(rng.random() < 0.5, rng.random() < 0.8, True) for _ in range(settings.test_rows * 3)]
            with open(rd / "eval_rollouts.jsonl", "w") as fh:
                fh.write("".join(json.dumps(r) + "\n" for r in rows_of(kinds, qs, settings.eval_samples)))
            (rd / "grpo.done").write_text("1\n")
            (rd / "eval.done").write_text("1\n")
    summary = ab.summarize(ws, settings)
    return ws, summary


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("study") / "ws")


@pytest.fixture
def ws(study, tmp_path):
    dest = tmp_path / "ws"
    shutil.copytree(study[0], dest)
    # the overrides name the original folder; point them at the copy
    for cmd in dest.glob("runs/*/*/cmd.json"):
        cmd.write_text(cmd.read_text().replace(str(study[0]), str(dest)))
    return dest


def by_name(checks):
    return {c.name.split(":")[0]: c for c in checks}


def test_an_intact_study_passes_every_check(study):
    ws, summary = study
    checks = va.verify(ws, TOK)
    assert all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    assert len(checks) == 6
    assert set(summary["decisions"]) == {"srpo_no_ieff", "srpo_no_flen", "format_and_final_acc_only"}
    assert all(d["outcome"] in ("SRPO better", "SRPO worse", "no difference", "inconclusive")
               for d in summary["decisions"].values())
    assert sorted(p.name for p in (ws / "outputs" / "ablation").glob("*.png")) == sorted(f"{a}.png" for a in ab.ARMS)
    table = (ws / "outputs" / "ablation" / "table.md").read_text()
    assert "| sft (start) | - | sample |" in table and table.count("| srpo_no_flen |") == 4  # 2 seeds x 2 decodings
    assert any("per-step standard error" in line for line in summary["lines"])


def test_the_gate_check_fails_on_a_missed_gate_and_on_numbers_not_from_the_rollouts(ws):
    gate = json.loads((ws / "gate.json").read_text())
    rows = ab.read_jsonl(ws / "gate_rollouts.jsonl")
    for r in rows[::3]:
        r["response"] = r["response"].replace("</reflection>", "")  # more malformed: the recomputed gate differs
    (ws / "gate_rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    check = by_name(va.verify(ws, TOK))["gate"]
    assert not check.ok and "differs" in check.detail
    (ws / "gate.json").write_text(json.dumps(ab.gate_numbers(rows)))  # consistent now, but missed
    check = by_name(va.verify(ws, TOK))["gate"]
    assert not check.ok and not ab.gate_numbers(rows)["passed"]
    assert gate["passed"]


def test_the_runs_check_fails_when_a_run_is_missing_or_short(ws):
    (ws / "runs" / "srpo_no_flen" / "seed1" / "eval.done").unlink()
    check = by_name(va.verify(ws, TOK))["runs"]
    assert not check.ok and "srpo_no_flen/seed1" in check.detail
    (ws / "runs" / "srpo_no_flen" / "seed1" / "eval.done").write_text("1\n")
    log = ws / "runs" / "srpo" / "seed0" / "grpo.log"
    log.write_text(log.read_text().splitlines()[0] + "\n")
    check = by_name(va.verify(ws, TOK))["runs"]
    assert not check.ok and "srpo/seed0 (1 steps" in check.detail


def test_the_pairing_check_fails_on_another_order_or_another_seed(ws):
    rd = ws / "runs" / "srpo_no_ieff" / "seed0" / "rollouts"
    one, two = (rd / "1.jsonl").read_text(), (rd / "2.jsonl").read_text()
    (rd / "1.jsonl").write_text(two.replace('"step": 2', '"step": 1'))
    (rd / "2.jsonl").write_text(one.replace('"step": 1', '"step": 2'))
    check = by_name(va.verify(ws, TOK))["pairing"]
    assert not check.ok and "another order" in check.detail
    (rd / "1.jsonl").write_text(one)
    (rd / "2.jsonl").write_text(two)
    assert by_name(va.verify(ws, TOK))["pairing"].ok
    cmd = ws / "runs" / "srpo_no_ieff" / "seed1" / "cmd.json"
    cmd.write_text(cmd.read_text().replace('"data.seed=2"', '"data.seed=7"'))
    check = by_name(va.verify(ws, TOK))["pairing"]
    assert not check.ok and "data.seed=7" in check.detail


def test_order_inversions_counts_only_strict_disagreements():
    a = {"p": 1, "q": 1, "r": 2, "s": 3}
    assert va.order_inversions(a, {"p": 1, "q": 2, "r": 2, "s": 4}) == (4, 0)  # a refill moved q: same order
    assert va.order_inversions(a, {"p": 2, "q": 1, "r": 1, "s": 3}) == (4, 1)  # r before p in b, after in a
    assert va.order_inversions(a, {"x": 1}) == (0, 0)


def test_the_table_check_fails_on_a_number_not_from_the_rollouts(ws):
    path = ws / "outputs" / "ablation" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["runs"]["srpo/seed1"]["sample"]["final_acc"] += 0.01
    path.write_text(json.dumps(metrics))
    check = by_name(va.verify(ws, TOK))["table"]
    assert not check.ok and "srpo/seed1" in check.detail
    ab.summarize(ws, SETTINGS)
    assert by_name(va.verify(ws, TOK))["table"].ok
    path = ws / "outputs" / "ablation" / "decisions.json"
    dec = json.loads(path.read_text())
    dec["decisions"]["srpo_no_flen"]["outcome"] = "SRPO better" if dec["decisions"]["srpo_no_flen"]["outcome"] != "SRPO better" else "SRPO worse"
    path.write_text(json.dumps(dec))
    check = by_name(va.verify(ws, TOK))["table"]
    assert not check.ok and "srpo_no_flen" in check.detail


def test_the_config_check_fails_on_an_unnamed_difference_or_a_missing_term(ws):
    cmd = ws / "runs" / "srpo_no_flen" / "seed0" / "cmd.json"
    data = json.loads(cmd.read_text())
    data["overrides"].append("actor_rollout_ref.actor.optim.lr=1e-3")
    cmd.write_text(json.dumps(data))
    check = by_name(va.verify(ws, TOK))["configs"]
    assert not check.ok and "actor_rollout_ref.actor.optim.lr" in check.detail
    data["overrides"] = [o for o in data["overrides"][:-1] if "len_alpha" not in o]
    cmd.write_text(json.dumps(data))
    check = by_name(va.verify(ws, TOK))["configs"]
    assert not check.ok and "len_alpha" in check.detail


def test_the_reward_check_fails_when_an_arm_ran_another_reward(ws):
    rd = ws / "runs" / "format_and_final_acc_only" / "seed1" / "rollouts"
    for f in rd.glob("*.jsonl"):
        rows = ab.read_jsonl(f)
        for r in rows:  # the scores of the paper's reward instead of the arm's
            r["score"] = compute_score("count_task", r["output"], r["gts"],
                                       {"srpo_token_counts": token_counts(TOK, r["output"])})["score"]
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    check = by_name(va.verify(ws, TOK))["reward"]
    assert not check.ok and "format_and_final_acc_only/seed1" in check.detail and "best fit srpo" in check.detail


def test_unknown_arms_are_refused_naming_the_known_ones(tmp_path, capsys):
    with pytest.raises(ab.StudyError, match="the known arms: srpo, srpo_no_ieff, srpo_no_flen, format_and_final_acc_only"):
        ab.parse_arms("srpo,no_lenght")
    assert ab.main(["--workspace", str(tmp_path / "w"), "--arms", "grpo"]) == 2
    assert "unknown arm(s) ['grpo']" in capsys.readouterr().err and not (tmp_path / "w").exists()  # before any work
    assert ab.main(["--workspace", str(tmp_path / "w"), "--seeds", "0,9"]) == 2
    assert "not all among the study's seeds" in capsys.readouterr().err


def test_an_override_that_does_not_exist_is_refused_before_any_work(tmp_path, capsys):
    assert ab.main(["--workspace", str(tmp_path / "w"), "--grpo-override", "trainer.totl_training_steps=3"]) == 2
    err = capsys.readouterr().err
    assert "trainer.totl_training_steps" in err and "total_training_steps" in err and not (tmp_path / "w").exists()


def test_a_study_resumed_with_other_settings_is_refused_naming_the_difference(tmp_path):
    ab.load_or_write_settings(tmp_path, SETTINGS)
    assert ab.load_or_write_settings(tmp_path, SETTINGS) == SETTINGS  # the same settings resume
    other = ab.Settings(**{**SETTINGS.__dict__, "grpo_steps": 3})
    with pytest.raises(ab.StudyError, match=r"grpo_steps: 2 \(the study's\) vs 3 \(this run's\)"):
        ab.load_or_write_settings(tmp_path, other)


def test_the_arms_overrides_differ_only_in_their_named_terms():
    base = set(ab.grpo_overrides(SETTINGS, "srpo", 0, "R"))
    for arm, terms in ab.ARMS.items():
        mine = set(ab.grpo_overrides(SETTINGS, arm, 0, "R"))
        assert mine - base == {f"{ab.KW}.{k}={v}" for k, v in terms.items()} and not base - mine
    assert "data.seed=1" in base and "data.seed=2" in set(ab.grpo_overrides(SETTINGS, "srpo", 1, "R"))


def test_standard_grpo_arm_pays_format_and_final_accuracy_only():
    q = questions(1)[0]
    kw = ab.ARMS["format_and_final_acc_only"]
    scores = {(fr, fi): compute_score("c", response(q, fr, fi)[0], response(q, fr, fi)[1], **kw)["score"]
              for fr in (True, False) for fi in (True, False)}
    assert scores == {(True, True): 1.0, (False, True): 1.0, (True, False): 0.5, (False, False): 0.5}


def test_gate_numbers_pass_inside_the_bands_and_fail_outside():
    qs = questions(5)
    kinds = gate_kinds(100)
    good = ab.gate_numbers(rows_of(kinds, qs * 5, 3))
    sampled = [k for i, k in enumerate(kinds) if i % 4]  # each question: one greedy response, then 3 samples
    right_first = [k for k in sampled if k[0] and k[2]]
    assert good["passed"] and good["quantities"]["harm_rate"]["value"] == pytest.approx(
        sum(not k[1] for k in right_first) / len(right_first))
    assert good["quantities"]["first_acc"]["value"] == pytest.approx(sum(k[0] for k in sampled) / 75)
    lo, hi = good["quantities"]["well_formed"]["interval"]
    assert lo < 0.9 < hi
    # every first answer right: first-answer accuracy out of its band
    bad = ab.gate_numbers(rows_of([(True, True, True)] * 100, qs * 5, 3))
    assert not bad["passed"] and not bad["quantities"]["first_acc"]["ok"] and bad["quantities"]["well_formed"]["ok"]
    assert any(line.startswith("[FAIL] gate first_acc: 1.000") for line in ab.gate_lines(bad))


def test_paired_bootstrap_and_the_outcome_rules():
    rng = random.Random(0)
    a = {s: {f"q{i}": float(rng.random() < 0.8) for i in range(96)} for s in range(4)}
    same = ab.paired_bootstrap(a, a)
    assert same == (0.0, 0.0, 0.0) and ab.outcome(*same[1:]) == "no difference"
    worse = {s: {q: max(0.0, v - 0.5) for q, v in qs.items()} for s, qs in a.items()}
    d, lo, hi = ab.paired_bootstrap(a, worse)
    assert d == pytest.approx(0.4, abs=0.05) and lo > 0 and ab.outcome(lo, hi) == "SRPO better"
    assert ab.outcome(*ab.paired_bootstrap(worse, a)[1:]) == "SRPO worse"
    noisy = {s: {q: float(rng.random() < 0.8) for q in qs} for s, qs in a.items()}
    assert ab.outcome(*ab.paired_bootstrap(a, noisy)[1:]) == "inconclusive"  # independent noise of +-0.06
    assert ab.outcome(-0.02, 0.025) == "no difference" and ab.outcome(-0.04, 0.01) == "inconclusive"


def test_step_standard_errors_from_the_console_lines(tmp_path):
    log = tmp_path / "grpo.log"
    q = questions(1)[0]
    infos = [compute_score("c", *response(q, True, i % 4 != 0)) for i in range(64)]  # final accuracy 0.75 of 64
    log.write_text(console_line(1, infos) + "\n")
    assert ab.step_standard_errors(log) == [pytest.approx((0.75 * 0.25 / 64) ** 0.5)]
