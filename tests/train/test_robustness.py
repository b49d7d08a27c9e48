"""The demo's robustness table and target checks (the numbers come from trained runs in the demo)."""

from __future__ import annotations

from mmzoo.train.robustness import format_robustness, target_checks


def rows(all_inputs: float, image_missing: float, audio_missing: float) -> dict:
    return {
        "image-only": {"label": "image only", "accuracy": 0.660, "robustness": {"all inputs": 0.660}},
        "audio-only": {"label": "audio only", "accuracy": 0.752, "robustness": {"all inputs": 0.752}},
        "fused": {"label": "fused", "accuracy": 0.870,
                  "robustness": {"all inputs": 0.870, "image missing": 0.6, "audio missing": 0.55}},
        "fused-dropout": {"label": "fused + dropout", "accuracy": all_inputs,
                          "robustness": {"all inputs": all_inputs, "image missing": image_missing,
                                         "audio missing": audio_missing}},
    }


def test_targets_compare_with_the_single_modality_models_and_the_fused_model_at_their_bounds():
    met = target_checks(rows(0.85, 0.722, 0.63))  # every number exactly at its bound
    assert [ok for _, ok in met] == [True, True, True]
    assert met[0][0] == "image missing: 0.722 >= audio-only 0.752 - 0.03"
    missed = target_checks(rows(0.848, 0.720, 0.628))
    assert [ok for _, ok in missed] == [False, False, False]


def test_the_table_leaves_conditions_a_model_cannot_meet_empty():
    table = format_robustness(list(rows(0.85, 0.7, 0.64).values()), 500)
    assert "| image only | 0.660 |  |  |" in table
    assert "| fused + dropout | 0.850 | 0.700 | 0.640 |" in table
    assert table.startswith("av-digits test split (500 examples)")
