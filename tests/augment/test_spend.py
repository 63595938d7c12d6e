"""The paid-request notice: how many requests, to where, under which cap; nothing for free endpoints."""
from __future__ import annotations

from dataclasses import replace

from src.augment.spend import sends_paid_requests, spend_notice
from src.config import ApiConfig, AugmentationConfig


def test_a_run_that_pays_says_how_many_requests_and_the_cap() -> None:
    aug = AugmentationConfig(num_paraphrase=0.2, num_synthetic=500)
    line = spend_notice(aug, 1000, key_present=True)
    assert line is not None and "up to 200 paraphrases + 500 synthetic dialogues = paid requests" in line
    assert "augmentation.api.max_cost=5" in line and "--skip-augmentation" in line
    uncapped = spend_notice(replace(aug, api=ApiConfig(max_cost=0)), None, key_present=False)
    assert uncapped is not None and "NO spend cap" in uncapped and "0.2 of the training rows as paraphrases" in uncapped
    assert "no key in UPSTAGE_API_KEY" in uncapped


def test_free_settings_send_nothing_paid() -> None:
    assert not sends_paid_requests(AugmentationConfig(num_speaker_swap=0.5))
    assert not sends_paid_requests(AugmentationConfig(num_paraphrase=3, backend="transformers"))
    assert not sends_paid_requests(AugmentationConfig(num_paraphrase=3, api=ApiConfig(base_url="http://localhost:8000/v1")))
    assert spend_notice(AugmentationConfig(), 10, True) is None
