"""Deterministic process models of the simulated plant: pure computation, no I/O, no threads.

The plant has four units, stepped together with a fixed time step ``dt``:

tank
    A vertical tank of cross-section ``tank_area`` and height ``tank_height``. The inflow
    (m3/h) is an upstream feed: a slow sine plus an Ornstein-Uhlenbeck disturbance. The
    outflow drains through a valve, ``outflow = outflow_k * sqrt(level)`` (Torricelli). The
    level integrates ``(inflow - outflow) / area`` and is clipped to ``[0, tank_height]``.
    ``tank.high_alarm`` sets at ``alarm_on`` and clears only below ``alarm_off``
    (hysteresis).
reactor
    A jacketed reactor, first-order thermal lag to ambient with a heater (0-100 %). A PI
    controller with anti-windup drives the heater so that the measured temperature
    (true temperature plus sensor noise) follows ``reactor.setpoint``, which clients may
    write.
line
    A packaging line with a seeded state machine, ``line.state``: 0 stopped, 1 running,
    2 fault. While running it finishes one part per ``cycle_time``: ``line.counter`` then
    increments and ``line.cycle`` (the machine-cycle trigger) is true for the first
    ``cycle_duty`` fraction of every cycle. Running stops or faults at random (exponential
    times); a fault is cleared to stopped after a random repair time; a stopped line
    restarts at random while ``line.enable`` is true. Clearing ``line.enable`` stops the
    line at once.
pump
    The line's drive pump: its speed ramps (first order) to ``pump_nominal_rpm`` while the
    line runs and to 0 otherwise. ``pump.vibration`` holds the latest ``vibration_samples``
    samples of the vibration velocity (mm/s), sampled evenly over the step, continuous
    across steps: harmonics 1x, 2x, 3x of the rotation frequency whose amplitudes grow with
    the square of the speed, plus sensor noise. ``pump.vibration_rms`` is the RMS of that
    signal as a transmitter reports it: the square root of an exponential average (time
    constant ``rms_tau``) of each step's mean square.

    A bearing defect (off unless ``bearing_fault_start`` is set) appears at that simulated
    time and grows: the rolling elements hit it ``bearing_defect_order`` times per shaft
    revolution (an outer-race defect's BPFO), and every impact rings the pump's structural
    resonance (``bearing_resonance``, decaying with ``bearing_damping``). The impact
    amplitude grows linearly with the defect's age (``bearing_fault_growth`` per second)
    and, like the harmonics, with the square of the speed. The impulses raise the
    waveform's kurtosis, crest factor and high-frequency energy long before its RMS. The
    fault draws no random numbers, so the plant is otherwise the same with it.

Every random number comes from one ``numpy.random.default_rng(seed)``, drawn in the same
order every step, so two models with the same seed and the same inputs have identical
states after the same number of steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.exceptions import ConfigurationError, WriteNotAllowed

__all__ = [
    "COMMANDS",
    "INPUTS",
    "AuxChannels",
    "LINE_FAULT",
    "LINE_RUNNING",
    "LINE_STOPPED",
    "ProcessConfig",
    "ProcessModel",
    "aux_registers",
    "hysteresis",
]

LINE_STOPPED = 0
"""``line.state`` value: the line is stopped (ready to start)."""
LINE_RUNNING = 1
"""``line.state`` value: the line is producing."""
LINE_FAULT = 2
"""``line.state`` value: the line has tripped; it goes to stopped once repaired."""

INPUTS = ("reactor.setpoint", "line.enable")
"""Names of the values a client may write (the model's inputs)."""
COMMANDS = ("line.reset", "tank.set_level")
"""What the plant's OPC UA methods do: zero ``line.counter``; set ``tank.level`` (m)."""

RECIPE = "PART-4711"


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """Parameters of the process models (SI units unless the name says otherwise)."""

    # tank
    tank_height: float = 5.0  # m
    tank_area: float = 0.05  # m2
    tank_level0: float = 2.0  # m, initial level
    outflow_k: float = 14.0  # m3/h per sqrt(m)
    inflow_nominal: float = 20.0  # m3/h
    inflow_amplitude: float = 10.0  # m3/h, of the slow sine
    inflow_period: float = 300.0  # s
    inflow_noise: float = 1.5  # m3/h, standard deviation of the OU disturbance
    inflow_noise_tau: float = 5.0  # s, correlation time of the disturbance
    alarm_on: float = 3.5  # m
    alarm_off: float = 3.3  # m
    # reactor
    ambient: float = 20.0  # degC
    reactor_gain: float = 1.5  # degC per % heater at steady state
    reactor_tau: float = 20.0  # s
    setpoint0: float = 60.0  # degC
    setpoint_min: float = 0.0  # degC
    setpoint_max: float = 150.0  # degC
    kp: float = 2.0  # % per degC
    ti: float = 20.0  # s, integral time
    temperature_noise: float = 0.05  # degC, sensor noise standard deviation
    # line
    cycle_time: float = 2.0  # s per part
    cycle_duty: float = 0.25  # fraction of a cycle during which line.cycle is true
    mean_time_to_stop: float = 240.0  # s of running
    mean_time_to_fault: float = 600.0  # s of running
    mean_time_to_start: float = 15.0  # s stopped (while enabled)
    mean_time_to_repair: float = 30.0  # s in fault
    # pump
    pump_nominal_rpm: float = 1450.0
    pump_tau: float = 1.5  # s
    harmonics: tuple[float, ...] = (3.0, 1.2, 0.5)  # mm/s peak at nominal speed: 1x, 2x, 3x
    vibration_noise: float = 0.2  # mm/s, sensor noise standard deviation
    vibration_samples: int = 64  # samples per step
    rms_tau: float = 1.0  # s, averaging time of the RMS transmitter
    # pump bearing defect, none while bearing_fault_start is None
    bearing_fault_start: float | None = None  # s of simulated time
    bearing_fault_growth: float = 0.5  # mm/s of impact amplitude per s of defect age
    bearing_defect_order: float = 3.58  # impacts per shaft revolution (BPFO / shaft speed)
    bearing_resonance: float = 2500.0  # Hz, rung by every impact
    bearing_damping: float = 0.0005  # s, decay time of the ringing

    def __post_init__(self) -> None:
        positive = (
            "tank_height",
            "tank_area",
            "outflow_k",
            "inflow_period",
            "inflow_noise_tau",
            "reactor_gain",
            "reactor_tau",
            "ti",
            "cycle_time",
            "mean_time_to_stop",
            "mean_time_to_fault",
            "mean_time_to_start",
            "mean_time_to_repair",
            "pump_tau",
            "rms_tau",
            "bearing_defect_order",
            "bearing_resonance",
            "bearing_damping",
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"ProcessConfig.{name} must be > 0, got {value!r}")
        if not 0 < self.cycle_duty < 1:
            raise ConfigurationError("ProcessConfig.cycle_duty must be between 0 and 1")
        if not self.alarm_off < self.alarm_on <= self.tank_height:
            raise ConfigurationError("ProcessConfig needs alarm_off < alarm_on <= tank_height")
        if self.vibration_samples < 1:
            raise ConfigurationError("ProcessConfig.vibration_samples must be >= 1")
        start = self.bearing_fault_start
        if start is not None and not (math.isfinite(start) and start >= 0):
            raise ConfigurationError(
                f"ProcessConfig.bearing_fault_start must be None or >= 0 s, got {start!r}"
            )
        if not (math.isfinite(self.bearing_fault_growth) and self.bearing_fault_growth >= 0):
            raise ConfigurationError("ProcessConfig.bearing_fault_growth must be >= 0")


def hysteresis(value: float, active: bool, on: float, off: float) -> bool:
    """Two-point alarm: set at ``value >= on``, cleared at ``value <= off``, else kept."""
    if value >= on:
        return True
    if value <= off:
        return False
    return active


class AuxChannels:
    """The auxiliary benchmark channels: ``count`` slow, deterministic uint16 sines.

    Channel ``i`` is ``32768 + 30000 * sin(2 pi t / P_i + phi_i)`` rounded to uint16, with a
    period ``P_i`` between 20 and 68 s and a phase spread by the golden angle, so that
    neighbouring channels differ. The value depends on the step number only.
    """

    def __init__(self, count: int, dt: float) -> None:
        i = np.arange(count, dtype=np.float64)
        self.count = count
        self._omega_dt = 2.0 * np.pi * dt / (20.0 + (i % 97) * 0.5)  # rad per step
        self._phase = i * 2.399963229728653

    def at(self, step: int) -> npt.NDArray[np.uint16]:
        """The channels' values after ``step`` steps (one vectorised evaluation)."""
        values = np.sin(self._omega_dt * step + self._phase)
        values *= 30000.0
        values += 32768.0
        return np.rint(values, out=values).astype(np.uint16)


def aux_registers(step: int, dt: float, count: int) -> npt.NDArray[np.uint16]:
    """Shorthand for ``AuxChannels(count, dt).at(step)``."""
    return AuxChannels(count, dt).at(step)


@dataclass(slots=True)
class _State:
    step: int = 0
    # tank
    level: float = 0.0
    inflow: float = 0.0
    outflow: float = 0.0
    inflow_disturbance: float = 0.0
    high_alarm: bool = False
    # reactor
    temperature: float = 0.0  # true temperature
    measured: float = 0.0  # what the sensor reports
    setpoint: float = 0.0
    heater: float = 0.0  # %
    integral: float = 0.0  # % (the PI controller's integral part)
    # line
    state: int = LINE_RUNNING
    enable: bool = True
    counter: int = 0
    cycle_step: int = 0  # steps into the current cycle
    # pump
    speed: float = 0.0  # rpm
    angle: float = 0.0  # rad, shaft angle at the start of the next step
    mean_square: float = 0.0  # (mm/s)^2, averaged
    vibration: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    defect_phase: float = 0.0  # bearing defect cycles since the last impact, in [0, 1)
    impact_age: float = math.inf  # s from the last impact to the start of the next step
    impact_amplitude: float = 0.0  # mm/s, of the last impact


class ProcessModel:
    """The whole plant as a deterministic discrete-time model.

    Parameters
    ----------
    seed
        Seed of the random generator.
    dt
        Time step in seconds.
    config
        Model parameters; the defaults describe the demo plant.

    Examples
    --------
    >>> model = ProcessModel(seed=1)
    >>> model.step(100)
    >>> round(model.time, 6)
    1.0
    >>> model.snapshot()["line.state"] in (0, 1, 2)
    True
    """

    def __init__(self, seed: int = 0, dt: float = 0.01, config: ProcessConfig | None = None):
        if not (isinstance(dt, int | float) and math.isfinite(dt) and 0 < dt <= 1.0):
            raise ConfigurationError(f"dt must be a number of seconds in (0, 1], got {dt!r}")
        self.seed = seed
        self.dt = float(dt)
        self.config = config or ProcessConfig()
        self._rng = np.random.default_rng(seed)
        c = self.config
        self._cycle_steps = max(1, round(c.cycle_time / self.dt))
        self._pulse_steps = max(1, round(c.cycle_duty * self._cycle_steps))
        # Per-step probabilities of the exponential state transitions.
        self._p_stop = -math.expm1(-self.dt / c.mean_time_to_stop)
        self._p_fault = -math.expm1(-self.dt / c.mean_time_to_fault)
        self._p_start = -math.expm1(-self.dt / c.mean_time_to_start)
        self._p_repair = -math.expm1(-self.dt / c.mean_time_to_repair)
        n = c.vibration_samples
        self._sample_fraction = np.arange(n, dtype=np.float64) / n
        self._orders = np.arange(1, len(c.harmonics) + 1, dtype=np.float64)[:, None]
        self._amplitudes = np.asarray(c.harmonics, dtype=np.float64)[:, None]
        nyquist = n / self.dt / 2.0
        if c.bearing_fault_start is not None and c.bearing_resonance >= nyquist:
            raise ConfigurationError(
                f"ProcessConfig.bearing_resonance ({c.bearing_resonance:g} Hz) must be below "
                f"the vibration signal's Nyquist frequency, {nyquist:g} Hz"
            )

        s = _State()
        s.level = min(max(c.tank_level0, 0.0), c.tank_height)
        s.inflow = max(c.inflow_nominal, 0.0)
        s.outflow = c.outflow_k * math.sqrt(s.level)
        s.high_alarm = s.level >= c.alarm_on
        s.setpoint = c.setpoint0
        s.temperature = s.measured = c.setpoint0
        s.heater = min(max((c.setpoint0 - c.ambient) / c.reactor_gain, 0.0), 100.0)
        s.integral = s.heater
        s.speed = c.pump_nominal_rpm
        s.mean_square = float(np.sum(self._amplitudes**2) / 2 + c.vibration_noise**2)
        s.vibration = np.zeros(n)
        self._s = s

    # -- inputs ---------------------------------------------------------------------------
    def set_input(self, name: str, value: Any) -> None:
        """Set one of the model's inputs (see :data:`INPUTS`), as a client write does.

        ``reactor.setpoint`` is clipped to ``[setpoint_min, setpoint_max]`` (a NaN is
        ignored); ``line.enable`` is taken as a bool.
        """
        if name == "reactor.setpoint":
            number = float(value)
            if not math.isnan(number):
                c = self.config
                self._s.setpoint = min(max(number, c.setpoint_min), c.setpoint_max)
        elif name == "line.enable":
            self._s.enable = bool(value)
        elif name == "line.reset":
            self._s.counter = 0
        elif name == "tank.set_level":
            number = float(value)
            if math.isfinite(number):
                self._s.level = min(max(number, 0.0), self.config.tank_height)
        else:
            raise WriteNotAllowed(f"{name!r} is not an input of the simulated plant")

    # -- time -----------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Number of steps taken."""
        return self._s.step

    @property
    def time(self) -> float:
        """Simulated time in seconds (``steps * dt``)."""
        return self._s.step * self.dt

    def step(self, n: int = 1) -> None:
        """Advance the model by ``n`` steps of ``dt``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigurationError(f"step count must be an integer >= 0, got {n!r}")
        for _ in range(n):
            self._step()

    def _step(self) -> None:
        s, c, dt = self._s, self.config, self.dt
        nvib = c.vibration_samples
        normals = self._rng.standard_normal(2 + nvib)
        uniform = float(self._rng.random())
        t = s.step * dt

        # tank: feed with a slow sine and an Ornstein-Uhlenbeck disturbance
        decay = dt / c.inflow_noise_tau
        s.inflow_disturbance += -s.inflow_disturbance * decay + c.inflow_noise * math.sqrt(
            2.0 * decay
        ) * float(normals[0])
        feed = c.inflow_nominal + c.inflow_amplitude * math.sin(2.0 * math.pi * t / c.inflow_period)
        s.inflow = max(0.0, feed + s.inflow_disturbance)
        s.outflow = c.outflow_k * math.sqrt(s.level)
        s.level += (s.inflow - s.outflow) / 3600.0 / c.tank_area * dt
        s.level = min(max(s.level, 0.0), c.tank_height)
        s.high_alarm = hysteresis(s.level, s.high_alarm, c.alarm_on, c.alarm_off)

        # reactor: PI on the measured temperature, conditional integration (anti-windup)
        error = s.setpoint - s.measured
        integral = s.integral + c.kp * error * dt / c.ti
        output = c.kp * error + integral
        if 0.0 <= output <= 100.0:
            s.integral = integral
        else:
            s.integral = min(max(s.integral, 0.0), 100.0)
        s.heater = min(max(c.kp * error + s.integral, 0.0), 100.0)
        drift = c.ambient + c.reactor_gain * s.heater - s.temperature
        s.temperature += drift * dt / c.reactor_tau
        s.measured = s.temperature + c.temperature_noise * float(normals[1])

        # line: state machine (one uniform draw per step), cycles and counter
        if s.state == LINE_RUNNING:
            if not s.enable:
                s.state = LINE_STOPPED
            elif uniform < self._p_fault:
                s.state = LINE_FAULT
            elif uniform < self._p_fault + self._p_stop:
                s.state = LINE_STOPPED
        elif s.state == LINE_STOPPED:
            if s.enable and uniform < self._p_start:
                s.state = LINE_RUNNING
        elif uniform < self._p_repair:
            s.state = LINE_STOPPED
        if s.state == LINE_RUNNING:
            s.cycle_step += 1
            if s.cycle_step >= self._cycle_steps:
                s.cycle_step = 0
                s.counter = (s.counter + 1) & 0xFFFFFFFF

        # pump: first-order speed ramp; vibration = harmonics of the rotation + noise
        target = c.pump_nominal_rpm if s.state == LINE_RUNNING else 0.0
        s.speed += (target - s.speed) * (1.0 - math.exp(-dt / c.pump_tau))
        omega = 2.0 * math.pi * s.speed / 60.0  # rad/s
        angles = s.angle + omega * dt * self._sample_fraction
        scale = (s.speed / c.pump_nominal_rpm) ** 2
        wave = scale * np.sum(self._amplitudes * np.sin(self._orders * angles), axis=0)
        s.vibration = wave + c.vibration_noise * normals[2:]
        if c.bearing_fault_start is not None:
            s.vibration += self._bearing_impacts(t, omega, scale)
        s.angle = (s.angle + omega * dt) % (2.0 * math.pi)
        block_ms = float(np.dot(s.vibration, s.vibration)) / nvib
        s.mean_square += (block_ms - s.mean_square) * (1.0 - math.exp(-dt / c.rms_tau))

        s.step += 1

    def _bearing_impacts(self, t: float, omega: float, scale: float) -> npt.NDArray[np.float64]:
        """The ringing of the bearing defect's impacts over this step's samples."""
        s, c, dt = self._s, self.config, self.dt
        start = c.bearing_fault_start
        assert start is not None
        amplitude = c.bearing_fault_growth * max(0.0, t - start) * scale
        # Impacts fall where the defect phase passes a whole cycle, at exact times within
        # the step, so the impulse train is regular across steps whatever dt is.
        cycles = c.bearing_defect_order * omega * dt / (2.0 * math.pi)  # per step
        first = (1.0 - s.defect_phase) / cycles if cycles > 0 else math.inf  # in steps
        count = math.floor((1.0 - first) * cycles - 1e-12) + 1 if first < 1.0 else 0
        impacts = (first + np.arange(count) / cycles) * dt if count else np.zeros(0)
        s.defect_phase = (s.defect_phase + cycles) % 1.0
        times, sizes = impacts, np.full(count, amplitude)
        # The previous impact still rings into this step unless it has died away.
        if s.impact_amplitude and s.impact_age < 50.0 * c.bearing_damping:
            times = np.concatenate([[-s.impact_age], times])
            sizes = np.concatenate([[s.impact_amplitude], sizes])
        if count:
            s.impact_age, s.impact_amplitude = dt - float(impacts[-1]), amplitude
        else:
            s.impact_age += dt
        if not np.any(sizes):
            return np.zeros(c.vibration_samples)
        age = self._sample_fraction[None, :] * dt - times[:, None]
        after = np.maximum(age, 0.0)
        ringing = np.exp(-after / c.bearing_damping) * np.sin(
            2.0 * math.pi * c.bearing_resonance * after
        )
        result: npt.NDArray[np.float64] = sizes @ ringing
        return result

    # -- outputs --------------------------------------------------------------------------
    @property
    def cycle_active(self) -> bool:
        """Whether the machine-cycle trigger is on."""
        s = self._s
        return s.state == LINE_RUNNING and s.cycle_step < self._pulse_steps

    def snapshot(self) -> dict[str, Any]:
        """Every value of the plant by tag name (plain Python scalars, arrays copied).

        ``pump.vibration`` is a float64 array of the latest step's samples; everything
        else is a float, int, bool or str.
        """
        s = self._s
        return {
            "tank.level": s.level,
            "tank.inflow": s.inflow,
            "tank.outflow": s.outflow,
            "tank.high_alarm": s.high_alarm,
            "reactor.temperature": s.measured,
            "reactor.setpoint": s.setpoint,
            "reactor.heater": s.heater,
            "pump.speed": s.speed,
            "pump.vibration_rms": math.sqrt(s.mean_square),
            "pump.vibration": s.vibration.copy(),
            "line.counter": s.counter,
            "line.state": s.state,
            "line.cycle": self.cycle_active,
            "line.enable": s.enable,
            "line.recipe": RECIPE,
            "plant.heartbeat": s.step & 0xFFFF,
        }
