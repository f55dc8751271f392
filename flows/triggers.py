"""Deployments and event triggers: the nightly batch on a cron, and a re-render whenever a keyframe changes."""

from __future__ import annotations

from typing import cast

from prefect.deployments.runner import RunnerDeployment
from prefect.events import Event, emit_event
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.render_batch import render_batch_flow
from flows.rerender import rerender_shot
from tasks.watch import Change

KEYFRAME_CHANGED = "toonfarm.keyframe.changed"


def emit_keyframe_changed(change: Change) -> Event | None:
    """Tell Prefect that a shot's input changed; the shot is the event's resource."""
    return emit_event(
        event=KEYFRAME_CHANGED,
        resource={
            "prefect.resource.id": f"toonfarm.shot.{change.shot.id}",
            "prefect.resource.name": change.shot.id,
            "toonfarm.shot": change.shot.id,
            "toonfarm.shotlist": str(change.shotlist),
        },
        payload={"path": str(change.path)},
    )


def deployments(shotlist: str, *, cron: str = "0 2 * * *", timezone: str = "UTC") -> list[RunnerDeployment]:
    """The nightly render of `shotlist`, and the re-render of any shot whose keyframes change."""
    nightly = cast(RunnerDeployment, render_batch_flow.to_deployment(
        name="nightly", schedule=Cron(cron, timezone=timezone), parameters={"shotlist": shotlist, "trigger": "nightly"},
        description="Render every shot that changed since the last run.", tags=["toonfarm", "nightly"],
        entrypoint_type=EntrypointType.MODULE_PATH,  # runs from any folder, as the installed package
    ))
    on_change = cast(RunnerDeployment, rerender_shot.to_deployment(
        name="on-keyframe-change",
        description="Re-render a shot when one of its keyframes or sources changes.",
        tags=["toonfarm", "rerender"],
        entrypoint_type=EntrypointType.MODULE_PATH,
        triggers=[
            DeploymentEventTrigger(
                expect={KEYFRAME_CHANGED},
                match={"prefect.resource.id": "toonfarm.shot.*"},
                parameters={
                    "shotlist": "{{ event.resource['toonfarm.shotlist'] }}",
                    "shot": "{{ event.resource['toonfarm.shot'] }}",
                    "trigger": "keyframe-change",
                },
            )
        ],
    ))  # to_deployment is dual sync/async; called from sync code it returns the deployment itself
    return [nightly, on_change]
