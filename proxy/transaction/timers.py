"""Timer values of RFC 3261 §17 (table 4 of Appendix A) and RFC 6026 §8.

Why a config object and not constants: the values are tunable (RFC 3261 §17.1.1.1 lets
T1 be raised on high-latency links), tests shrink them, and sans-IO code must take
everything it depends on as input.  Durations are seconds; a transaction turns them into
absolute deadlines from the ``now`` its caller passes in, never from a clock.

Which timers run also depends on the transport: over TCP, TLS or SCTP ("reliable") the
retransmission timers A, E and G are never started and the "wait for stray
retransmissions" timers D, I, J and K are zero (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class IdEnum(Enum):
    """An Enum hashed by identity (its members are singletons, compared by identity).

    Why: ``Enum.__hash__`` is Python code (a hash of the member's name), and the machines
    look states, triggers and timers up in dicts and sets on every input; the identity
    hash is the C slot, four times faster, and consistent with Enum equality.
    """

    __hash__ = object.__hash__


class Timer(IdEnum):
    """The timers of RFC 3261 §17 (A-K), RFC 6026 (L, M) and the optional 100 Trying timer."""

    A = "A"  # INVITE client: request retransmission, doubling (§17.1.1.2)
    B = "B"  # INVITE client: transaction timeout, 64*T1 (§17.1.1.2)
    D = "D"  # INVITE client: wait for response retransmissions in Completed (§17.1.1.2)
    E = "E"  # non-INVITE client: request retransmission, capped at T2 (§17.1.2.2)
    F = "F"  # non-INVITE client: transaction timeout, 64*T1 (§17.1.2.2)
    K = "K"  # non-INVITE client: wait for response retransmissions, T4 (§17.1.2.2)
    G = "G"  # INVITE server: final response retransmission, capped at T2 (§17.2.1)
    H = "H"  # INVITE server: wait for ACK, 64*T1 (§17.2.1)
    I = "I"  # INVITE server: absorb ACK retransmissions in Confirmed, T4 (§17.2.1)  # noqa: E741
    J = "J"  # non-INVITE server: absorb request retransmissions, 64*T1 (§17.2.2)
    L = "L"  # INVITE server: absorb INVITE retransmissions in Accepted (RFC 6026 §8.7)
    M = "M"  # INVITE client: pass 2xx retransmissions up in Accepted (RFC 6026 §8.4)
    TRYING = "Trying"  # INVITE server: send 100 if the TU is silent for 200 ms (§17.2.1)

    @property
    def ends_state(self) -> bool:
        """True for timers that end a state rather than retransmit.

        When a timer that ends a state and a retransmission timer fall due at the same
        instant, the one that ends the state fires first, so no copy is sent on the way out.
        """
        return self not in _RETRANSMIT


_RETRANSMIT = frozenset({Timer.A, Timer.E, Timer.G, Timer.TRYING})


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Timer durations in seconds, shared by every transaction of one proxy."""

    t1: float = 0.5
    """RTT estimate (RFC 3261 §17.1.1.1): first retransmission interval of A, E and G."""
    t2: float = 4.0
    """Maximum retransmission interval for non-INVITE requests and INVITE responses."""
    t4: float = 5.0
    """Maximum time a message stays in the network: timers I and K on unreliable transports."""
    timer_d: float = 32.0
    """Timer D on unreliable transports; RFC 3261 says "at least 32 seconds"."""
    trying_delay: float = 0.2
    """How long an INVITE server transaction given a ready-made 100 (Trying) waits for the
    TU's own response before sending it (§17.2.1: "within 200 ms")."""

    _durations: dict[tuple[Timer, bool], float | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """``duration()`` answers, by (timer, reliable), filled in at construction (every
    transaction starts two or three timers)."""

    def __post_init__(self) -> None:
        # A zero or negative T1 would make the retransmission timers fire forever at one
        # instant; refuse it here rather than loop in handle_timer.
        if not self.t1 > 0:
            raise ValueError(f"t1 must be > 0, got {self.t1!r}")
        if not self.t2 >= self.t1:
            raise ValueError(f"t2 must be >= t1, got t2={self.t2!r} t1={self.t1!r}")
        if not self.t4 >= 0:
            raise ValueError(f"t4 must be >= 0, got {self.t4!r}")
        if not self.timer_d >= 0:
            raise ValueError(f"timer_d must be >= 0, got {self.timer_d!r}")
        if not self.trying_delay >= 0:
            raise ValueError(f"trying_delay must be >= 0, got {self.trying_delay!r}")
        for timer in Timer:
            for reliable in (False, True):
                self._durations[timer, reliable] = self._duration(timer, reliable)

    @property
    def timeout(self) -> float:
        """64*T1: timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1

    def duration(self, timer: Timer, *, reliable: bool) -> float | None:
        """Initial duration of ``timer``, or None when the transport turns it off.

        A zero duration means "at once" (D, I, J, K on reliable transports).
        """
        return self._durations[timer, reliable]

    def _duration(self, timer: Timer, reliable: bool) -> float | None:
        if timer in _RETRANSMIT and timer is not Timer.TRYING:
            return None if reliable else self.t1
        if timer in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M):
            return self.timeout
        if timer is Timer.D:
            return 0.0 if reliable else self.timer_d
        if timer in (Timer.I, Timer.K):
            return 0.0 if reliable else self.t4
        if timer is Timer.J:
            return 0.0 if reliable else self.timeout
        return self.trying_delay


DEFAULT_TIMERS = TimerConfig()
