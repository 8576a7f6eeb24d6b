"""Replay a robomimic export's demos in robosuite, as robosuite's
``scripts/playback_demonstrations_from_hdf5.py`` does, and say how close they come.

Run it with a Python that has robosuite (not a dependency of Stagecraft), e.g.::

    python3.11 -m venv /tmp/rs && /tmp/rs/bin/pip install robosuite==1.4.1 mujoco==2.3.7 h5py
    MUJOCO_GL=disable /tmp/rs/bin/python scripts/robosuite_replay.py EXPORT/dataset.hdf5

For each demo (``mask/train`` then ``mask/valid``, as robomimic lists them): the environment
from ``data.attrs["env_args"]``, reset from the demo's ``model_file`` (``--no-xml``: keep the
environment's own model, for demos recorded with an older robosuite whose XML no longer
loads), then every recorded state set and read back, then the actions replayed open-loop
from the first state (robosuite's own script warns that this drifts). Prints one line per
demo; exits non-zero if a state does not read back within 1e-9.
"""

import json
import sys

import h5py
import numpy as np


def main(path: str, use_xml: bool) -> int:
    import robosuite

    worst = 0.0
    with h5py.File(path) as f:
        meta = json.loads(f["data"].attrs["env_args"])
        kwargs = {k: v for k, v in meta["env_kwargs"].items() if k != "env_name"}
        env = robosuite.make(
            meta["env_name"],
            **kwargs,
            has_renderer=False,
            has_offscreen_renderer=False,
            use_camera_obs=False,
            ignore_done=True,
        )
        demos = [d.decode() for key in ("train", "valid") for d in f[f"mask/{key}"][...]]
        for name in sorted(demos, key=lambda d: int(d[5:])):
            demo = f[f"data/{name}"]
            env.reset()
            if use_xml:
                env.reset_from_xml_string(env.edit_model_xml(demo.attrs["model_file"]))
                env.sim.reset()
            states, actions = demo["states"][()], demo["actions"][()]
            if not int(demo.attrs["num_samples"]) == len(actions) == len(states):
                raise SystemExit(f"{name}: num_samples, actions and states disagree")
            read_back = 0.0
            for state in states:
                env.sim.set_state_from_flattened(state)
                env.sim.forward()
                read_back = max(
                    read_back, float(np.abs(env.sim.get_state().flatten() - state).max())
                )
            worst = max(worst, read_back)
            env.sim.set_state_from_flattened(states[0])
            env.sim.forward()
            drift = []
            for j, action in enumerate(actions[:-1]):
                env.step(action)
                drift.append(float(np.linalg.norm(states[j + 1] - env.sim.get_state().flatten())))
            print(
                f"{name}: {len(actions)} steps, states read back within {read_back:.1e}; "
                f"open-loop action replay drift median {np.median(drift):.3f}, max {max(drift):.3f}"
            )
    return 0 if worst <= 1e-9 else 1


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--no-xml"]
    if len(args) != 1:
        raise SystemExit(__doc__)
    sys.exit(main(args[0], use_xml="--no-xml" not in sys.argv))
