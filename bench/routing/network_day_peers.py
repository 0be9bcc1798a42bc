#!/usr/bin/env python3
"""The network day planned by doorstep and by the peer solvers that can state it, each answer
checked here.

The day (six practices, nine clinicians with skills, shifts and a break, eighty visits, two care
homes) is what `network_day --write-day` writes. This script gives every solver the same travel
seconds: it works out the matrix once from the day's speed model and writes the day again with
that matrix, which `doorstep plan` then reads. VROOM states the whole day (skills, breaks,
several depots, windows). OR-Tools states it with allowed vehicles and break intervals. PyVRP
0.14 has no breaks, so it runs only on the same day without them (`--no-breaks`, beside the
others on that day); its skills are routing profiles in which every place a clinician may not
serve is a day's drive away.

How each peer is told the day:
- a care home is one job per resident at the home's location, each review starting within the
  home's window (as doorstep plans them);
- an immediate visit must start by five minutes after the soonest any clinician who may take it
  could start it (doorstep weighs later as lateness; the peers get it as a hard window);
- a clinician may work up to `max_overtime_minutes` past the shift end;
- every visit should be served: VROOM gets priorities by urgency, OR-Tools a penalty per visit
  left out far above any travel.

Every answer, doorstep's included, is replayed by `check`. It never trusts a solver's times. A
break may be taken before driving on or on arrival at the next stop, whichever is sooner (doorstep
plans the first; the lenient rule can only favour the peers). The cost is doorstep's objective
(`core/routing/src/plan.rs`, `weights`): 10^13 an immediate visit left out, 10^12 a same-day
one, 10^6 + 10^5 a day overdue a routine one, 10^7 a second late (immediate delay included), 2 a
second of travel, 1 a second of overtime. For doorstep the replay must also agree with the
plan's own summary, or the script stops.

Usage: network_day_peers.py --day DAY.json --doorstep BIN [--limits 0.1 1 10] [--seeds N]
[--long-seeds N] [--solvers doorstep vroom ortools-gls] [--no-breaks] [--reference-limit S]
[--out DIR]

With `--solvers doorstep` it needs nothing beyond Python's standard library: CI runs it so, briefly,
as an independent replay of doorstep's plans against their own summaries.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

EARTH_RADIUS_M = 6_371_008.8
FIVE_MINUTES = 300
HORIZON = 48 * 3600  # seconds: past the end of any day's work

UNSERVED_IMMEDIATE = 10**13
UNSERVED_SAME_DAY = 10**12
UNSERVED_ROUTINE = 10**6
OVERDUE_DAY = 10**5
OVERDUE_CAP = 30
LATENESS = 10**7
TRAVEL = 2
OVERTIME = 1


def clock(text: str) -> int:
    """Seconds since midnight of "HH:MM" or "HH:MM:SS"."""
    parts = [int(p) for p in text.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def window(w: dict) -> tuple[int, int]:
    """A problem's window as (start, end) seconds."""
    return clock(w["start"]), clock(w["end"])


@dataclass
class Job:
    """One visit, or one resident's review at a care home."""

    id: str
    loc: int
    service: int
    windows: list[tuple[int, int]]
    skills: set[str]
    urgency: str
    days_overdue: int
    due: int | None = None  # an immediate job's latest start, once known

    def hard_windows(self) -> list[tuple[int, int]]:
        """The windows a peer is given: the whole day when there are none, and an immediate
        visit's cut off at its due time."""
        windows = self.windows or [(0, HORIZON)]
        if self.due is None:
            return windows
        return [(a, min(b, self.due)) for a, b in windows if a <= self.due]

    def left_out_cost(self) -> int:
        if self.urgency == "immediate":
            return UNSERVED_IMMEDIATE
        if self.urgency == "same-day":
            return UNSERVED_SAME_DAY
        return UNSERVED_ROUTINE + OVERDUE_DAY * min(self.days_overdue, OVERDUE_CAP)


@dataclass
class Clinician:
    """One clinician: matrix places of start and end, shift, overtime allowed, skills, break."""

    id: str
    start: int
    end: int
    shift: tuple[int, int]
    overtime: int
    skills: set[str]
    break_window: tuple[int, int] | None
    break_minutes: int


@dataclass
class Day:
    """The day every solver is given: places, travel seconds between them, clinicians, jobs."""

    points: list[tuple[float, float]]
    seconds: list[list[int]]
    clinicians: list[Clinician]
    jobs: list[Job]
    problem: dict = field(repr=False)

    def may_take(self, c: Clinician, j: Job) -> bool:
        return j.skills <= c.skills


def speed_matrix(points: list[tuple[float, float]], travel: dict) -> list[list[int]]:
    """Travel seconds between points by the day's speed model (the plan schema's formula)."""
    speed = travel.get("speed_kmh", 30.0) / 3.6
    detour = travel.get("detour_factor", 1.3)
    parking = travel.get("parking_minutes", 2.0) * 60

    def seconds(a: tuple[float, float], b: tuple[float, float]) -> int:
        if a == b:
            return 0
        la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
        h = (
            math.sin((la2 - la1) / 2) ** 2
            + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
        )
        metres = 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))
        return round(metres * detour / speed + parking)

    return [[seconds(a, b) for b in points] for a in points]


def load_day(path: Path, breaks: bool) -> Day:
    problem = json.loads(path.read_text())
    if not breaks:
        for c in problem["clinicians"]:
            c.pop("break", None)
    points: list[tuple[float, float]] = []

    def point(loc: dict) -> int:
        p = (loc["lat"], loc["lon"])
        if p not in points:
            points.append(p)
        return points.index(p)

    clinicians = []
    for c in problem["clinicians"]:
        brk = c.get("break")
        clinicians.append(
            Clinician(
                id=c["id"],
                start=point(c["start"]),
                end=point(c.get("end") or c["start"]),
                shift=window(c["shift"]),
                overtime=60 * c.get("max_overtime_minutes", 30),
                skills=set(c.get("skills", [])),
                break_window=window(brk["window"]) if brk else None,
                break_minutes=brk["minutes"] if brk else 0,
            )
        )
    jobs = [
        Job(
            id=v["id"],
            loc=point(v["location"]),
            service=60 * v["minutes"],
            windows=[window(w) for w in v.get("windows", [])],
            skills=set(v.get("skills", [])),
            urgency=v.get("urgency", "routine"),
            days_overdue=v.get("days_overdue", 0),
        )
        for v in problem.get("visits", [])
    ]
    for home in problem.get("care_homes", []):
        at = point(home["location"])
        for r in home["residents"]:
            jobs.append(
                Job(
                    id=r["id"],
                    loc=at,
                    service=60 * r["minutes"],
                    windows=[window(w) for w in home.get("windows", [])],
                    skills=set(home.get("skills", [])),
                    urgency=r.get("urgency", "routine"),
                    days_overdue=r.get("days_overdue", 0),
                )
            )
    if problem.get("travel", {}).get("matrix"):
        sys.exit("the day already carries a matrix: give the day as network_day writes it")
    seconds = speed_matrix(points, problem.get("travel", {}))
    day = Day(points, seconds, clinicians, jobs, problem)
    for j in jobs:
        if j.urgency == "immediate":
            j.due = soonest_start(day, j) + FIVE_MINUTES
    return day


def first_start(windows: list[tuple[int, int]], arrive: int) -> int | None:
    """The soonest start at or after `arrive` within one of `windows` (any time if none)."""
    if not windows:
        return arrive
    for a, b in windows:
        if arrive <= b:
            return max(arrive, a)
    return None


def soonest_start(day: Day, job: Job) -> int:
    """The soonest any clinician who may take `job` could start it, leaving at shift start."""
    starts = [
        first_start(job.windows, c.shift[0] + day.seconds[c.start][job.loc])
        for c in day.clinicians
        if day.may_take(c, job)
    ]
    starts = [s for s in starts if s is not None]
    if not starts:
        sys.exit(f"nobody can ever start immediate visit {job.id}")
    return min(starts)


BREAK = "break"


@dataclass
class Checked:
    """One answer replayed: its measures and what, if anything, it breaks."""

    served: int = 0
    left_out: int = 0
    travel: int = 0
    late: int = 0
    immediate_delay: int = 0
    overtime: int = 0
    cost: int = 0
    faults: list[str] = field(default_factory=list)


def check(day: Day, routes: dict[str, list[str]]) -> Checked:
    """Replays `routes` (clinician id -> job ids in order, `BREAK` where the break is taken)."""
    out = Checked()
    by_id = {j.id: j for j in day.jobs}
    seen: set[str] = set()
    for c in day.clinicians:
        route = routes.get(c.id, [])
        if not route:
            continue
        t, at = c.shift[0], c.start
        took_break = False
        pending_break = False
        for item in route:
            if item == BREAK:
                if took_break or c.break_window is None:
                    out.faults.append(f"{c.id}: a break it does not have")
                    continue
                took_break = True
                pending_break = True
                continue
            job = by_id.get(item)
            if job is None:
                out.faults.append(f"{c.id}: unknown job {item}")
                continue
            if item in seen:
                out.faults.append(f"{item} served twice")
            seen.add(item)
            if not day.may_take(c, job):
                out.faults.append(f"{c.id} lacks a skill {item} needs")
            drive = day.seconds[at][job.loc]
            if pending_break:
                t = take_break(c, t, drive, job, out)
                pending_break = False
            else:
                t += drive
            out.travel += drive
            start = first_start(job.windows, t)
            late = 0
            if start is None:
                start = t
                late = t - job.windows[-1][1]
            out.late += late
            if job.due is not None:
                # Beyond any lateness past its window, as the plan's summary counts it.
                out.immediate_delay += max(0, start - job.due - late)
            t = start + job.service
            at = job.loc
        home = day.seconds[at][c.end]
        if pending_break:
            t = take_break(c, t, home, None, out)
        else:
            t += home
        out.travel += home
        if c.break_window is not None and not took_break and t > c.break_window[0]:
            out.faults.append(f"{c.id} is out over the break window and takes no break")
        past = t - c.shift[1]
        if past > c.overtime:
            out.faults.append(f"{c.id} back {past - c.overtime} s past shift end and overtime")
        out.overtime += max(0, past)
    out.served = len(seen)
    left = [j for j in day.jobs if j.id not in seen]
    out.left_out = len(left)
    out.cost = (
        sum(j.left_out_cost() for j in left)
        + LATENESS * (out.late + out.immediate_delay)
        + TRAVEL * out.travel
        + OVERTIME * out.overtime
    )
    return out


def take_break(c: Clinician, t: int, drive: int, job: Job | None, out: Checked) -> int:
    """The time the next stop is reached when the break comes between here and it: taken
    before driving or on arrival, whichever reaches the next start sooner."""
    assert c.break_window is not None
    a, b = c.break_window
    length = 60 * c.break_minutes
    options = []
    for before in (True, False):
        begin = max(t if before else t + drive, a)
        if begin > b:
            continue
        done = begin + length + (drive if before else 0)
        ready = done if job is None else first_start(job.windows, done)
        options.append((done if ready is None else ready, done))
    if not options:
        out.faults.append(f"{c.id}'s break starts after its window")
        return max(t, a) + length + drive
    return min(options)[1]


# ---- doorstep -------------------------------------------------------------------------------


def solve_doorstep(day: Day, path: Path, binary: str, limit: float, seed: int):
    """`doorstep plan` on the day with the matrix, replayed and held to its own summary."""
    t0 = time.perf_counter()
    run = subprocess.run(
        [binary, "plan", str(path), "--time-limit", str(limit), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    plan = json.loads(run.stdout)
    routes = {}
    for r in plan["rounds"]:
        items: list[str] = []
        for s in r["stops"]:
            if s["kind"] == "break":
                items.append(BREAK)
            elif s["kind"] == "care-home":
                items.extend(s["residents"])
            else:
                items.append(s["id"])
        routes[r["clinician"]] = items
    checked = check(day, routes)
    s = plan["summary"]
    mine = (checked.travel, checked.late, checked.immediate_delay, checked.left_out)
    theirs = (
        s["travel_seconds"],
        s["late_seconds"],
        s["immediate_delay_seconds"],
        len(plan["unplanned"]),
    )
    if mine != theirs:
        sys.exit(f"doorstep's summary {theirs} disagrees with the replay {mine} (seed {seed})")
    if checked.faults:
        sys.exit(f"doorstep's plan (seed {seed}) breaks a rule: {'; '.join(checked.faults)}")
    return checked, wall


# ---- VROOM ----------------------------------------------------------------------------------


def solve_vroom(day: Day, limit: float):
    """VROOM at its highest exploration level, one thread, `limit` as its timeout."""
    import numpy as np
    import vroom

    every_skill = {s for c in day.clinicians for s in c.skills} | {
        s for j in day.jobs for s in j.skills
    }
    skill_ids = {s: k for k, s in enumerate(sorted(every_skill))}
    problem = vroom.Input()
    matrix = np.array(day.seconds, dtype=np.uint32)
    problem.set_durations_matrix(profile="car", matrix_input=matrix)
    problem.set_costs_matrix(profile="car", matrix_input=matrix)
    for k, c in enumerate(day.clinicians):
        breaks = []
        if c.break_window is not None:
            breaks.append(
                vroom.Break(
                    k + 1,
                    time_windows=[vroom.TimeWindow(*c.break_window)],
                    service=60 * c.break_minutes,
                )
            )
        problem.add_vehicle(
            vroom.Vehicle(
                k + 1,
                start=c.start,
                end=c.end,
                skills={skill_ids[s] for s in c.skills},
                time_window=vroom.TimeWindow(c.shift[0], c.shift[1] + c.overtime),
                breaks=breaks,
            )
        )
    priority = {"immediate": 100, "same-day": 50}
    for k, j in enumerate(day.jobs):
        windows = j.hard_windows()
        problem.add_job(
            vroom.Job(
                k + 1,
                location=j.loc,
                default_service=j.service,
                skills={skill_ids[s] for s in j.skills},
                priority=priority.get(j.urgency, min(40, 10 + j.days_overdue)),
                time_windows=[vroom.TimeWindow(a, b) for a, b in windows],
            )
        )
    t0 = time.perf_counter()
    sol = problem.solve(exploration_level=5, nb_threads=1, timeout=timedelta(seconds=limit))
    wall = time.perf_counter() - t0
    routes: dict[str, list[str]] = {}
    df = sol.routes
    for vehicle, group in df.groupby("vehicle_id", sort=True):
        c = day.clinicians[int(vehicle) - 1]
        items = []
        for _, step in group.iterrows():
            if step["type"] == "job":
                items.append(day.jobs[int(step["id"]) - 1].id)
            elif step["type"] == "break":
                items.append(BREAK)
        routes[c.id] = items
    return check(day, routes), wall


# ---- PyVRP ---------------------------------------------------------------------------------


def solve_pyvrp(day: Day, limit: float, seed: int):
    """PyVRP's hybrid genetic search for `limit` seconds, on a day without breaks."""
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    if any(c.break_window is not None for c in day.clinicians):
        sys.exit("PyVRP cannot state a break: run it with --no-breaks")
    m = Model()
    locs = [m.add_location(x=lon, y=lat) for lat, lon in day.points]
    depots = {}
    for c in day.clinicians:
        for at in (c.start, c.end):
            if at not in depots:
                depots[at] = m.add_depot(locs[at])
    # Skills as routing profiles: one per set of skills, in which every place whose visits
    # need a skill the set lacks is a day's drive away, so no route of that set goes there.
    needs = {j.loc: j.skills for j in day.jobs}
    depots_needing = {c.start for c in day.clinicians} | {c.end for c in day.clinicians}
    for j in day.jobs:
        if needs[j.loc] != j.skills or (j.skills and j.loc in depots_needing):
            sys.exit(f"{j.id}: PyVRP's profiles bar places, and {j.id}'s place has other needs")
    far = 10**6
    profiles = {}
    for c in day.clinicians:
        key = frozenset(c.skills)
        if key in profiles:
            continue
        profile = m.add_profile(name=",".join(sorted(key)))
        for b, skills in needs.items():
            if not skills <= key:
                for a in range(len(locs)):
                    if a != b:
                        profile.add_edge(locs[a], locs[b], distance=far, duration=far)
        profiles[key] = profile
    for c in day.clinicians:
        m.add_vehicle_type(
            start_depot=depots[c.start],
            end_depot=depots[c.end],
            tw_early=c.shift[0],
            tw_late=c.shift[1] + c.overtime,
            # Leaving at shift start makes PyVRP's overtime (duration past the shift's length)
            # doorstep's (back past shift end); waiting costs nothing either way.
            start_late=c.shift[0],
            shift_duration=c.shift[1] - c.shift[0],
            max_overtime=c.overtime,
            unit_overtime_cost=OVERTIME,
            unit_distance_cost=TRAVEL,
            profile=profiles[frozenset(c.skills)],
            name=c.id,
        )
    for j in day.jobs:
        windows = j.hard_windows()
        if len(windows) != 1:
            sys.exit(f"{j.id}: PyVRP takes one window a client")
        m.add_client(
            locs[j.loc],
            service_duration=j.service,
            tw_early=windows[0][0],
            tw_late=windows[0][1],
            name=j.id,
        )
    for a, row in enumerate(day.seconds):
        for b, s in enumerate(row):
            m.add_edge(locs[a], locs[b], distance=s, duration=s)
    t0 = time.perf_counter()
    res = m.solve(stop=MaxRuntime(limit), seed=seed, display=False)
    wall = time.perf_counter() - t0
    routes: dict[str, list[str]] = {}
    for route in res.best.routes():
        c = day.clinicians[route.vehicle_type()]
        routes[c.id] = [day.jobs[act.idx].id for act in route if act.is_client()]
    return check(day, routes), wall


# ---- OR-Tools -------------------------------------------------------------------------------


def solve_ortools(day: Day, limit: float):
    """OR-Tools routing: parallel cheapest insertion, then guided local search for `limit`."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    depots = sorted({c.start for c in day.clinicians} | {c.end for c in day.clinicians})
    node_loc = depots + [j.loc for j in day.jobs]
    first_job = len(depots)
    starts = [depots.index(c.start) for c in day.clinicians]
    ends = [depots.index(c.end) for c in day.clinicians]
    manager = pywrapcp.RoutingIndexManager(len(node_loc), len(day.clinicians), starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    service = [0] * first_job + [j.service for j in day.jobs]

    def travel(i: int, k: int) -> int:
        return day.seconds[node_loc[manager.IndexToNode(i)]][node_loc[manager.IndexToNode(k)]]

    def timed(i: int, k: int) -> int:
        return service[manager.IndexToNode(i)] + travel(i, k)

    # Service time by routing index (starts and ends included), as the break
    # constraint reads it.
    visit_transits = [service[manager.IndexToNode(i)] for i in range(routing.Size())]
    travel_cb = routing.RegisterTransitCallback(travel)
    time_cb = routing.RegisterTransitCallback(timed)
    routing.SetArcCostEvaluatorOfAllVehicles(travel_cb)
    routing.AddDimension(time_cb, HORIZON, HORIZON, False, "time")
    dim = routing.GetDimensionOrDie("time")
    solver = routing.solver()
    for v, c in enumerate(day.clinicians):
        dim.CumulVar(routing.Start(v)).SetRange(c.shift[0], c.shift[1] + c.overtime)
        dim.CumulVar(routing.End(v)).SetRange(c.shift[0], c.shift[1] + c.overtime)
        if c.break_window is not None:
            a, b = c.break_window
            interval = solver.FixedDurationIntervalVar(
                a, b, 60 * c.break_minutes, False, f"break-{v}"
            )
            dim.SetBreakIntervalsOfVehicle([interval], v, visit_transits)
    for k, j in enumerate(day.jobs):
        index = manager.NodeToIndex(first_job + k)
        windows = j.hard_windows()
        cumul = dim.CumulVar(index)
        cumul.SetRange(windows[0][0], windows[-1][1])
        for (_, b), (a2, _) in itertools.pairwise(windows):
            cumul.RemoveInterval(b + 1, a2 - 1)
        # (This binding refuses SetAllowedVehiclesForIndex's list; the vehicle variable says it.)
        barred = [v for v, c in enumerate(day.clinicians) if not day.may_take(c, j)]
        routing.VehicleVar(index).RemoveValues(barred)
        routing.AddDisjunction([index], 10**9)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(max(1, int(limit * 1000)))
    t0 = time.perf_counter()
    sol = routing.SolveWithParameters(params)
    wall = time.perf_counter() - t0
    if sol is None:
        return None, wall
    routes: dict[str, list[str]] = {}
    for v, c in enumerate(day.clinicians):
        jobs: list[tuple[str, int]] = []
        index = sol.Value(routing.NextVar(routing.Start(v)))
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            jobs.append((day.jobs[node - first_job].id, sol.Value(dim.CumulVar(index))))
            index = sol.Value(routing.NextVar(index))
        items = [job for job, _ in jobs]
        if jobs and c.break_window is not None:
            # The break goes after the last stop started before it.
            intervals = sol.IntervalVarContainer()
            begin = next(
                intervals.Element(k).StartValue()
                for k in range(intervals.Size())
                if intervals.Element(k).Var().Name() == f"break-{v}"
            )
            place = sum(1 for _, start in jobs if start < begin)
            items.insert(place, BREAK)
        routes[c.id] = items
    return check(day, routes), wall


# ---- the run --------------------------------------------------------------------------------


def row(name: str, limit: float, runs: list[tuple[Checked, float]], reference: Checked) -> str:
    """One line of the table: the run of median cost (its served, lateness, travel and overtime
    too) and the median wall time over `runs`. Faults go to stderr."""
    for checked, _ in runs:
        for fault in checked.faults[:5]:
            print(f"{name} {limit:g} s: {fault}", file=sys.stderr)
    # The upper median, as the network_day example takes it: one run's own figures.
    pick = sorted((c for c, _ in runs), key=lambda c: c.cost)[len(runs) // 2]
    cost = pick.cost
    faults = sum(len(c.faults) for c, _ in runs)
    wall = statistics.median(w for _, w in runs)
    return (
        f"| {name} | {limit:g} s | {wall:.2f} | {len(runs)} | {pick.served}/{pick.served + pick.left_out} "
        f"| {pick.late + pick.immediate_delay} | {pick.travel / 60:.0f} "
        f"| {pick.travel / reference.travel:.4f} | {pick.overtime / 60:.0f} "
        f"| {cost / reference.cost:.4f} | {faults} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--day", type=Path, required=True)
    ap.add_argument("--doorstep", required=True)
    ap.add_argument("--limits", type=float, nargs="+", default=[0.1, 1.0, 10.0])
    ap.add_argument("--seeds", type=int, default=30, help="runs of a seeded solver below 5 s")
    ap.add_argument("--long-seeds", type=int, default=10, help="runs of a seeded solver from 5 s")
    ap.add_argument("--solvers", nargs="+", default=["doorstep", "vroom", "ortools-gls"])
    ap.add_argument("--out", type=Path, default=Path("target/bench-routing"))
    ap.add_argument(
        "--reference-limit",
        type=float,
        default=10.0,
        help="seconds for doorstep's reference plan (10; CI's smoke run takes less)",
    )
    ap.add_argument(
        "--no-breaks", action="store_true", help="the same day with no clinician's break"
    )
    args = ap.parse_args()

    day = load_day(args.day, breaks=not args.no_breaks)
    args.out.mkdir(parents=True, exist_ok=True)
    with_matrix = args.out / (
        "network-day-no-breaks-matrix.json" if args.no_breaks else "network-day-matrix.json"
    )
    problem = dict(day.problem)
    problem["travel"] = dict(problem.get("travel", {}))
    problem["travel"]["matrix"] = {
        "points": [{"lat": a, "lon": b} for a, b in day.points],
        "seconds": day.seconds,
    }
    with_matrix.write_text(json.dumps(problem))

    reference, _ = solve_doorstep(day, with_matrix, args.doorstep, args.reference_limit, 1)
    print(
        f"network day: {len(day.clinicians)} clinicians, {len(day.jobs)} jobs "
        f"(care-home residents one each), {len(day.points)} places; reference: doorstep "
        f"{args.reference_limit:g} s seed 1, cost {reference.cost}, travel {reference.travel / 60:.0f} min"
    )
    print()
    print(
        "| solver | budget | wall s (median) | runs | served | late + immediate delay s "
        "| travel min | ÷ reference's | overtime min | cost ÷ reference's (median) "
        "| faults, all runs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    solvers = {
        "doorstep": lambda limit, seed: solve_doorstep(
            day, with_matrix, args.doorstep, limit, seed
        ),
        "vroom": lambda limit, _seed: solve_vroom(day, limit),
        "pyvrp": lambda limit, seed: solve_pyvrp(day, limit, seed),
        "ortools-gls": lambda limit, _seed: solve_ortools(day, limit),
    }
    for limit in args.limits:
        for name in args.solvers:
            runs_of = args.seeds if limit < 5 else args.long_seeds
            seeds = range(1, runs_of + 1) if name in ("doorstep", "pyvrp") else [1]
            runs = [solvers[name](limit, seed) for seed in seeds]
            found = [(c, w) for c, w in runs if c is not None]
            if not found:
                print(f"| {name} | {limit:g} s | {runs[0][1]:.2f} | 1 | no solution | | | | | | |")
                continue
            print(row(name, limit, found, reference), flush=True)
    print()
    print(
        "Each line is the run of median cost (the upper median) of its solver and budget; VROOM "
        "and OR-Tools run once. Reference: "
        f"doorstep's {args.reference_limit:g} s plan (seed 1) of the same day, in the same run."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
