"""Parse the calendar files given with two independent parsers from PyPI,
`icalendar` and the stricter `ical`, and check what they read back: the
number of events, each UID, start, end, summary and status, against the
expectations file (JSON) beside them. Exits 1 on any difference."""
import datetime as dt
import json
import sys
from pathlib import Path

import icalendar
from ical.calendar_stream import IcsCalendarStream


def with_icalendar(text):
    cal = icalendar.Calendar.from_ical(text)
    out = []
    for ev in cal.walk("VEVENT"):
        out.append({
            "uid": str(ev["UID"]),
            "start": ev.decoded("DTSTART").astimezone(dt.timezone.utc).isoformat(),
            "end": ev.decoded("DTEND").astimezone(dt.timezone.utc).isoformat(),
            "summary": str(ev.get("SUMMARY", "")),
            "location": str(ev.get("LOCATION", "")),
            "status": str(ev.get("STATUS", "")),
        })
    return out


def with_ical(text):
    cal = IcsCalendarStream.calendar_from_ics(text)
    out = []
    for ev in cal.events:
        out.append({
            "uid": ev.uid,
            "start": ev.dtstart.astimezone(dt.timezone.utc).isoformat(),
            "end": ev.dtend.astimezone(dt.timezone.utc).isoformat(),
            "summary": ev.summary or "",
            "location": ev.location or "",
            "status": (ev.status.value if ev.status is not None else ""),
        })
    return out


def main():
    failed = False
    for path in sys.argv[1:]:
        p = Path(path)
        want = []
        for e in json.loads(p.with_suffix(".json").read_text(encoding="utf-8")):
            utc = lambda ms: dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat()
            want.append({"uid": e["uid"], "start": utc(e["start_ms"]), "end": utc(e["end_ms"]),
                         "summary": e["summary"], "location": e["location"], "status": e["status"]})
        text = p.read_text(encoding="utf-8")
        raw = p.read_bytes()
        lines = raw.split(b"\r\n")
        if lines[-1] != b"" or any(b"\n" in l for l in lines) or any(len(l) > 75 for l in lines):
            print(f"{p.name}: lines are not CRLF-ended and folded at 75 octets")
            failed = True
        for name, parse in (("icalendar", with_icalendar), ("ical", with_ical)):
            try:
                got = parse(text)
            except Exception as e:  # noqa: BLE001 - any refusal is a failure to report
                print(f"{p.name}: {name} refused it: {e!r}")
                failed = True
                continue
            if got != want:
                print(f"{p.name}: {name} read\n  {got}\nwanted\n  {want}")
                failed = True
            else:
                print(f"{p.name}: {name} reads {len(got)} event(s) as expected")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
