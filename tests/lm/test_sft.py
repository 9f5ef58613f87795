"""SFT: overfits a few RookWorld samples; packing and padding rows; resume."""

import pytest
import torch

from tinyreason.chess.data import split_text
from tinyreason.lm import sft
from tinyreason.lm.model import load_model, train_char_tokenizer
from tinyreason.lm.state import latest_checkpoint
from tinyreason.runlog import read_metrics


def test_rows_packing_and_padding():
    docs = [([1, 2, 3], [1, 1, 1]), ([4, 5], [0, 1]), ([6, 7, 8, 9], [1, 1, 1, 1])]
    packed = sft.Rows(docs, 3, True, 0, pad_id=0, shuffle=False)
    assert packed.per_epoch == 3
    ids, attn, mask = packed.batch([0, 1, 2, 3])
    assert ids.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 2, 3]] and attn.all()
    assert mask[1].tolist() == [0, 1, 1]
    padded = sft.Rows(docs, 3, False, 0, pad_id=0, shuffle=False)
    ids, attn, mask = padded.batch([1, 2])
    assert ids.tolist() == [[4, 5, 0], [6, 7, 8]] and attn.tolist() == [[1, 1, 0], [1, 1, 1]]


def test_completion_only_mask():
    tok = train_char_tokenizer(["P: x M: y"])
    (ids, mask), = sft.encode([split_text("P: x M: y")], tok, completion_only=True)
    assert len(ids) == len("P: x M: y") + 1 and mask == [0] * len("P: x ") + [1] * (len("M: y") + 1)


@pytest.mark.slow
def test_sft_overfits_and_resumes(rook_data, tmp_path):
    data = tmp_path / "four.txt"
    lines = rook_data.read_text().splitlines()
    data.write_text("\n".join([lines[0], lines[8]]) + "\n")  # one policy and one env sample
    args = [f"train_data=[{data}]", "train_split=null", f"eval_data=[{data}]", "eval_split=null", "char_tokenizer=true",
            "arch.n_layer=2", "arch.n_embd=64", "arch.n_head=4", "arch.n_positions=256", "packing=false", "seq_len=256",
            "batch_size=2", "grad_accum=1", "lr=1e-2", "warmup_steps=3", "max_steps=40", "eval_every=20", "save_every=20",
            "weight_decay=0.0", f"run_dir={tmp_path / 'run'}", "device=cpu"]
    assert sft.main(args) == 0
    recs = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert recs[0]["loss"] > 2.5 and recs[-1]["loss"] < 0.5 and recs[-1]["eval_loss"] < 0.5
    model, tok = load_model(latest_checkpoint(tmp_path / "run"), device="cpu")
    from tinyreason.lm.heldout import greedy_completions

    line = data.read_text().splitlines()[0]
    s = split_text(line)
    assert greedy_completions(model, tok, [s.prompt], max_new_tokens=12)[0][:12] == s.completion[:12]
    # resume from the step-40 checkpoint gives the same final weights
    import shutil

    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step_0000040")
    (tmp_path / "run" / "checkpoints" / "latest.json").unlink()
    assert sft.main(args + ["resume=true"]) == 0
    again = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert [r["loss"] for r in again] == [r["loss"] for r in recs]
    model2, _ = load_model(latest_checkpoint(tmp_path / "run"), device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
