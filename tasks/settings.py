"""Every toonfarm setting, typed, in one place. Resolution order: CLI > environment (TOONFARM_*) >
`toonfarm.toml` in the working folder > the defaults below."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

import shot_db
from tooncrafter_model.backend import backend_spec
from tooncrafter_model.quality import QAThresholds
from tooncrafter_model.store import Store, share_files, shot_db_file


class Limits(BaseModel):
    """Upper bounds on what a shot list and its media may ask for, checked when they are loaded and before
    anything is allocated for them: one hostile or mistyped file must not take a farm's memory or disk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_frame: int = Field(1_000_000, ge=1, description="highest frame number (11.5 hours at 24 fps)")
    max_shot_frames: int = Field(100_000, ge=1, description="frames in one shot's range")
    max_inbetweens: int = Field(250, ge=0, description="in-betweens in one gap between two drawings")
    max_image_pixels: int = Field(40_000_000, ge=1, description="pixels of one image, read from its header (8K fits)")
    max_shotlist_bytes: int = Field(8 << 20, ge=1, description="size of a shot list file")
    max_yaml_nodes: int = Field(1_000_000, ge=1, description="YAML nodes once aliases are expanded")
    min_fps: float = Field(1.0, gt=0, description="lowest frame rate")
    max_fps: float = Field(240.0, gt=0, description="highest frame rate")
    max_name_length: int = Field(64, ge=1, description="characters in a show, sequence or shot code")


def _octal(value: Any) -> Any:
    """A umask as written: 18, 0o022 in toonfarm.toml, or "022" / "0o022" in the environment (octal)."""
    if isinstance(value, str):
        try:
            return int(value.strip().lower().removeprefix("0o"), 8)
        except ValueError:
            raise ValueError(f"not an octal umask: {value!r} (e.g. 022)") from None
    return value


def _owner_keeps_access(value: int) -> int:
    if value & 0o700:
        raise ValueError(f"umask {value:03o} takes the farm's own access to its files away (e.g. 022, 027)")
    return value


Umask = Annotated[int, BeforeValidator(_octal), Field(ge=0, le=0o777), AfterValidator(_owner_keeps_access)]


class Settings(BaseSettings):
    """Where outputs and provenance go, which compute runs the pairs, and how hard it retries."""

    model_config = SettingsConfigDict(
        env_prefix="TOONFARM_", env_nested_delimiter="__", toml_file="toonfarm.toml", extra="forbid", frozen=True
    )

    output_root: Path = Field(Path("toonfarm_out"), description="where keyframes, renders and shot versions go")
    db: str | None = Field(None, description="SQLAlchemy URL of the shot DB; default: SQLite in output_root")
    ray_address: str | None = Field(None, description="join this Ray cluster; default: local Ray")
    actors: int = Field(2, ge=1, description="workers, each keeping one model loaded")
    actor_cpus: float = Field(1.0, gt=0, description="CPUs booked per worker")
    actor_gpus: float = Field(0.0, ge=0, description="GPUs booked per worker (fractions share a GPU)")
    max_in_flight: int = Field(2, ge=1, description="pairs queued on each worker at once")
    max_attempts: int = Field(3, ge=1, description="tries per pair before its shot fails")
    pair_timeout_s: float = Field(900.0, gt=0, description="a pair running longer is retried elsewhere")
    db_retry_s: float = Field(
        60.0, ge=0, description="how long a shot DB transaction waits for a database that is restarting or locked"
    )
    heartbeat_s: float = Field(
        30.0, gt=0, description="how often a running batch stamps its row with the shot DB's clock: its heartbeat"
    )
    dead_after_s: float = Field(
        600.0, gt=0, description="a run whose batches have not beaten for this long is dead, on any host: the next "
        "run settles what it left (at least 3 heartbeats plus db_retry_s)"
    )
    device: str = Field("cpu", description="torch device for the backends: cpu, cuda, cuda:1")
    model_cache: Path | None = Field(None, description="downloaded weights; default ~/.cache/toonfarm/models")
    toon_checkpoint: Path | None = Field(None, description="ToonCrafter model.ckpt or .safetensors")
    toon_sketch_checkpoint: Path | None = Field(None, description="ToonCrafter sketch_encoder.ckpt (sketch guidance)")
    toon_dtype: str = Field("fp32", pattern="^(fp32|fp16|bf16)$", description="ToonCrafter precision on GPUs")
    umask: Umask = Field(
        0o022, description="umask of everything the farm writes, on the driver and every worker (022: folders "
        "0755, files 0644, so a shared farm's other users and nodes can read them; TOONFARM_UMASK=027)"
    )
    allow_outside_root: bool = Field(False, description="let a shot list reach files outside its folder")
    shot_defaults: dict[str, Any] = Field(
        default_factory=dict, description="defaults for every shot list's shots, under the list's own (--default)"
    )
    limits: Limits = Field(default_factory=Limits, description="bounds on shot lists and media (TOONFARM_LIMITS__MAX_FPS)")
    qa_thresholds: QAThresholds = Field(
        default_factory=QAThresholds,
        description="a generated frame is flagged when a quality score is above its threshold "
        "(TOONFARM_QA_THRESHOLDS__GHOST=0.15); a shot list's qa.thresholds override them per shot",
    )
    backend_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="extra construction settings per backend, e.g. {toon: {fit: crop}}"
    )
    preview_port: int = Field(4201, ge=1, le=65535, description="port of the preview server `toonfarm server` runs")
    preview_url: str | None = Field(
        None, description="where browsers reach the preview server; default http://127.0.0.1:<preview_port>"
    )

    @field_validator("db")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError(f"not a database URL: {value!r} (e.g. sqlite:///shots.db, postgresql+psycopg://host/db)")
        return value

    @field_validator("dead_after_s")
    @classmethod
    def _dead_after(cls, value: float, info: ValidationInfo) -> float:
        # A live run's beats can be db_retry_s apart (a beat waits for the database like any transaction):
        # taking it for dead needs that and more than two missed beats on top.
        beat, wait = info.data.get("heartbeat_s"), info.data.get("db_retry_s")
        if beat is not None and wait is not None and value < 3 * beat + wait:
            raise ValueError(f"{value:g} s would take a live run for dead: at least 3 heartbeats (heartbeat_s "
                             f"{beat:g}) plus db_retry_s ({wait:g}), {3 * beat + wait:g} s")  # fmt: skip
        return value

    @field_validator("preview_url")
    @classmethod
    def _preview_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r} (e.g. http://farmhead:4201)")
        return value

    @property
    def preview_base_url(self) -> str:
        """The base of the links the dashboard's pictures and videos use."""
        return (self.preview_url or f"http://127.0.0.1:{self.preview_port}").rstrip("/")

    def share_files(self) -> None:
        """Apply `umask` to this process (the driver); Ray workers get it through their WorkerConfig."""
        share_files(self.umask)

    @property
    def db_url(self) -> str:
        """The shot DB's URL: the configured one, else a SQLite file inside the output root."""
        return self.db or shot_db.default_url(shot_db_file(self.output_root))

    @property
    def store(self) -> Store:
        """Content-addressed keyframes, sketches and renders shared by every shot and version."""
        return Store.under(self.output_root)

    def backend_settings(self, backend: str) -> dict[str, Any]:
        """What `load_backend(backend, ...)` is built with: the settings its registry entry names (and the
        device, for one that runs on a device), then its `backend_options`."""
        spec = backend_spec(backend)
        out: dict[str, Any] = {"device": self.device} if spec.device else {}
        for arg, setting in spec.settings.items():
            value = getattr(self, setting)
            if value is not None:
                out[arg] = str(value) if isinstance(value, Path) else value
        return {**out, **self.backend_options.get(backend, {})}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)
