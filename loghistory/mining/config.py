"""Config of online template learning: `exporter.logs.learning`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class LearningConfig(BaseModel):
    """The exporter mines WARN/ERROR lines no pattern covers and promotes new frequent templates.

    A template is promoted when it has been seen at least `promote_lines_per_minute` on average
    over the last `rate_window_seconds` and was first seen at least `min_age_seconds` ago (a
    one-off burst is an incident, not a new kind of line). Promoted templates are written to
    `learned_file`, counted as `tts_log_template_matches_total{log,template}` and announced by
    the TtsNewLogTemplate info alert; `tts-sentinel mine accept|reject` decides what they become.
    Relative paths are under `exporter.state_dir`.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    promote_lines_per_minute: float = Field(default=1.0, gt=0)
    rate_window_seconds: float = Field(default=600.0, ge=10)
    min_age_seconds: float = Field(default=300.0, ge=0)
    # Hard cap on templates counted at once (promoted and accepted): each is a few series.
    max_active_templates: int = Field(default=50, ge=1, le=1000)
    # Drain3: clusters kept per log (least recently seen dropped first), similarity to join a cluster,
    # depth of its prefix tree.
    max_clusters: int = Field(default=1000, ge=10, le=100_000)
    similarity: float = Field(default=0.5, gt=0, le=1)
    depth: int = Field(default=4, ge=3, le=10)
    learned_file: Path = Path("learned-patterns.json")
    state_file: Path = Path("mining-state.json")
    save_interval_seconds: float = Field(default=60.0, gt=0)

    def learned_path(self, state_dir: Path) -> Path:
        """Where the learned-patterns file is, for the exporter and for `tts-sentinel mine`."""
        return self.learned_file if self.learned_file.is_absolute() else Path(state_dir) / self.learned_file

    def state_path(self, state_dir: Path) -> Path:
        """Where the online miners' clusters are saved."""
        return self.state_file if self.state_file.is_absolute() else Path(state_dir) / self.state_file

    def promote_threshold(self) -> float:
        """Lines within the rate window that promote a template."""
        return self.promote_lines_per_minute * self.rate_window_seconds / 60.0
