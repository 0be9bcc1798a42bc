"""Tests of the network-day benchmark's checker: it must price a round exactly and name every
rule a round breaks, or its verdict on the peers (and on doorstep) means nothing.

Run from the repository root: `python3 -m unittest discover -s bench/routing -p 'test_*.py'`
(`scripts/test` does).
"""

import json
import tempfile
import unittest
from pathlib import Path

import network_day_peers as peers

# Three places on one meridian, about 1.1 km apart: base, north, further north.
BASE = {"lat": 50.70, "lon": -1.90}
NORTH = {"lat": 50.71, "lon": -1.90}
FAR = {"lat": 50.72, "lon": -1.90}


def small_day(**changes) -> dict:
    """A paramedic and a pharmacist at one base; a visit anyone may make, one only a prescriber
    may make (immediate), and a care home with two residents for pharmacists."""
    day = {
        "clinicians": [
            {
                "id": "para",
                "start": BASE,
                "shift": {"start": "08:00", "end": "16:00"},
                "break": {"window": {"start": "12:00", "end": "14:00"}, "minutes": 30},
                "skills": ["paramedic"],
                "max_overtime_minutes": 30,
            },
            {
                "id": "pharm",
                "start": BASE,
                "shift": {"start": "09:00", "end": "17:00"},
                "skills": ["pharmacist", "prescriber"],
            },
        ],
        "visits": [
            {"id": "open", "location": NORTH, "minutes": 30},
            {
                "id": "urgent",
                "location": FAR,
                "minutes": 20,
                "skills": ["prescriber"],
                "urgency": "immediate",
                "windows": [{"start": "09:00", "end": "10:00"}],
            },
        ],
        "care_homes": [
            {
                "id": "home",
                "location": NORTH,
                "windows": [{"start": "10:00", "end": "16:00"}],
                "skills": ["pharmacist"],
                "residents": [
                    {"id": "r1", "minutes": 20},
                    {"id": "r2", "minutes": 20, "days_overdue": 3},
                ],
            }
        ],
    }
    day.update(changes)
    return day


def load(problem: dict, breaks: bool = True) -> peers.Day:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "day.json"
        path.write_text(json.dumps(problem))
        return peers.load_day(path, breaks=breaks)


class CheckerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.day = load(small_day())
        self.leg = self.day.seconds[0][1]  # base to north

    def test_the_matrix_follows_the_speed_model(self) -> None:
        # 1 111.95 m great circle, × 1.3 detour, at 30 km/h, plus 2 minutes' parking.
        self.assertEqual(self.leg, round(1111.95 * 1.3 / (30 / 3.6) + 120))
        self.assertEqual(self.day.seconds[1][1], 0)

    def test_a_sound_day_is_priced_exactly_and_breaks_nothing(self) -> None:
        routes = {
            "para": ["open", peers.BREAK],
            "pharm": ["urgent", "r1", "r2"],
        }
        out = peers.check(self.day, routes)
        self.assertEqual(out.faults, [])
        far = self.day.seconds[0][2]
        far_north = self.day.seconds[2][1]
        self.assertEqual(out.travel, 2 * self.leg + far + far_north + self.leg)
        self.assertEqual((out.served, out.left_out, out.late, out.overtime), (4, 0, 0, 0))
        self.assertEqual(out.cost, peers.TRAVEL * out.travel)

    def test_the_immediate_visit_is_due_five_minutes_after_the_soonest_start(self) -> None:
        urgent = next(j for j in self.day.jobs if j.id == "urgent")
        # Only the pharmacist prescribes: leaves at 09:00, drives there.
        self.assertEqual(urgent.due, 9 * 3600 + self.day.seconds[0][2] + 300)
        # Reached after the open visit, it starts late past its due time.
        out = peers.check(self.day, {"pharm": ["open", "urgent"]})
        arrive = 9 * 3600 + self.leg + 1800 + self.day.seconds[1][2]
        self.assertEqual(out.immediate_delay, arrive - urgent.due)
        self.assertEqual(out.late, 0)

    def test_every_broken_rule_is_named(self) -> None:
        cases = {
            "a skill": ({"para": ["urgent"]}, "para lacks a skill urgent needs"),
            "twice": ({"pharm": ["open", "open"]}, "open served twice"),
            # Back by 08:40, before the break window opens: no break is due.
            "no break due": ({"para": ["open"]}, None),
            "unknown": ({"pharm": ["ghost"]}, "pharm: unknown job ghost"),
            "a break it lacks": ({"pharm": [peers.BREAK, "open"]}, "a break it does not have"),
        }
        for name, (routes, fault) in cases.items():
            with self.subTest(name):
                out = peers.check(self.day, routes)
                if fault is None:
                    self.assertEqual(out.faults, [])
                else:
                    self.assertTrue(any(fault in f for f in out.faults), out.faults)

    def test_a_round_out_over_its_break_window_must_take_the_break(self) -> None:
        late_open = small_day()
        late_open["visits"][0]["windows"] = [{"start": "13:00", "end": "14:00"}]
        day = load(late_open)
        out = peers.check(day, {"para": ["open"]})
        self.assertIn("para is out over the break window and takes no break", out.faults)
        self.assertEqual(peers.check(day, {"para": [peers.BREAK, "open"]}).faults, [])

    def test_overtime_is_priced_and_past_the_allowance_is_a_fault(self) -> None:
        short = small_day()
        short["clinicians"][0]["shift"]["end"] = "08:30"
        short["clinicians"][0]["max_overtime_minutes"] = 5
        out = peers.check(load(short), {"para": ["open"]})
        back = 8 * 3600 + 2 * self.leg + 1800
        self.assertEqual(out.overtime, back - (8 * 3600 + 1800))
        self.assertTrue(any("past shift end and overtime" in f for f in out.faults))

    def test_work_left_out_costs_as_the_objective_says(self) -> None:
        out = peers.check(self.day, {})
        self.assertEqual(out.left_out, 4)
        self.assertEqual(
            out.cost,
            peers.UNSERVED_IMMEDIATE + 3 * peers.UNSERVED_ROUTINE + 3 * peers.OVERDUE_DAY,
        )

    def test_lateness_past_every_window(self) -> None:
        out = peers.check(self.day, {"pharm": ["open", "r1"]})
        self.assertEqual(out.late, 0)  # waits for the home to open at 10:00
        tight = small_day()
        tight["care_homes"][0]["windows"] = [{"start": "09:00", "end": "09:10"}]
        out = peers.check(load(tight), {"pharm": ["open", "r1"]})
        self.assertEqual(out.late, 9 * 3600 + self.leg + 1800 - (9 * 3600 + 600))

    def test_a_break_is_taken_whichever_way_reaches_the_next_stop_sooner(self) -> None:
        # The open visit ends at 11:55. Breaking there from 12:00 and then driving reaches the
        # far visit at about 12:35, past its window; driving first and breaking on arrival
        # (12:00-12:30) starts it on time. The checker allows either.
        timed = small_day()
        timed["visits"][0]["windows"] = [{"start": "11:25", "end": "11:30"}]
        timed["visits"][1].update(
            skills=[], urgency="routine", windows=[{"start": "12:00", "end": "12:32"}]
        )
        day = load(timed)
        on = day.seconds[1][2]
        self.assertGreater(12 * 3600 + 1800 + on, 12 * 3600 + 32 * 60)
        out = peers.check(day, {"para": ["open", peers.BREAK, "urgent"]})
        self.assertEqual((out.faults, out.late), ([], 0))

    def test_without_breaks_the_day_has_none(self) -> None:
        day = load(small_day(), breaks=False)
        self.assertTrue(all(c.break_window is None for c in day.clinicians))


if __name__ == "__main__":
    unittest.main()
