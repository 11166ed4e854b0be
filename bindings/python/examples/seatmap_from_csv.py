#!/usr/bin/env python3
"""Load a performance's seat map from a CSV file and print its availability.

The CSV has a header row with at least the columns seat_no, grade and price
(other columns, such as row or section, are ignored):

    seat_no,grade,price
    1,VIP,150000
    2,VIP,150000
    ...

Load into a durable store, creating the concert and the performance:

    seatmap_from_csv.py seats.csv --store memory:/var/lib/concert \\
        --title "Spring Tour" --starts-at 2030-05-01T19:00:00+09:00 --venue "Olympic Hall"

Add a performance to an existing concert with --concert-id. Show the
availability of a performance already in the store (no CSV):

    seatmap_from_csv.py --store memory:/var/lib/concert --schedule-id 3

With the default store, "memory:", the seat map lives only while the script
runs: a dry run that checks the file. Exit status: 0 on success, 1 when the
engine refuses (e.g. a seat number already in the performance: nothing is
loaded then), 2 for a malformed CSV file or bad options.
"""

import argparse
import csv
import datetime
import sys
from collections import Counter, OrderedDict

import concert

REQUIRED_COLUMNS = ("seat_no", "grade", "price")
SYMBOLS = {concert.SeatState.AVAILABLE: ".", concert.SeatState.HELD: "h",
           concert.SeatState.RESERVED: "X"}


class CsvError(Exception):
    pass


def read_seats(path):
    """Returns [SeatSpec] from the CSV file, or raises CsvError naming the line."""
    seats, first_line = [], {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CsvError(f"{path}: missing column(s) {', '.join(missing)} "
                           f"(the header must name {', '.join(REQUIRED_COLUMNS)})")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                seat_no = int(row["seat_no"])
                price = int(row["price"])
            except (TypeError, ValueError):
                raise CsvError(f"{where}: seat_no and price must be whole numbers, "
                               f"got {row['seat_no']!r} and {row['price']!r}") from None
            grade = (row["grade"] or "").strip()
            if seat_no <= 0 or price <= 0 or not grade:
                raise CsvError(f"{where}: need seat_no > 0, price > 0 and a grade")
            if seat_no in first_line:
                raise CsvError(f"{where}: seat {seat_no} is listed twice "
                               f"(first on line {first_line[seat_no]})")
            first_line[seat_no] = reader.line_num
            seats.append(concert.SeatSpec(seat_no, price, grade))
    if not seats:
        raise CsvError(f"{path}: no seats")
    return seats


def print_availability(engine, schedule_id, out=sys.stdout):
    schedule = engine.schedule(schedule_id)
    seats = engine.seats(schedule_id)
    starts = concert.to_datetime(schedule.starts_at).isoformat(timespec="minutes")
    print(f"schedule {schedule.id} of concert {schedule.concert_id}: {starts}"
          f"{' at ' + schedule.venue if schedule.venue else ''}", file=out)

    grades = OrderedDict()
    for seat in seats:
        grades.setdefault(seat.grade, []).append(seat)
    print(f"{'grade':<8}{'price':>12}{'seats':>8}{'available':>11}{'held':>7}{'reserved':>10}",
          file=out)
    for grade, members in grades.items():
        prices = sorted({s.price for s in members})
        price = f"{prices[0]}" if len(prices) == 1 else f"{prices[0]}-{prices[-1]}"
        states = Counter(s.state for s in members)
        print(f"{grade:<8}{price:>12}{len(members):>8}{states[concert.SeatState.AVAILABLE]:>11}"
              f"{states[concert.SeatState.HELD]:>7}{states[concert.SeatState.RESERVED]:>10}",
              file=out)
    print(f"{'total':<8}{'':>12}{schedule.total_seats:>8}{schedule.available_seats:>11}"
          f"{schedule.held_seats:>7}{schedule.reserved_seats:>10}", file=out)

    print("seat map (. available, h held, X reserved):", file=out)
    for start in range(0, len(seats), 20):
        row = seats[start:start + 20]
        marks = "".join(SYMBOLS.get(s.state, "?") for s in row)
        print(f"  {row[0].seat_no:>5}-{row[-1].seat_no:<5} {marks}", file=out)


def parse_time(text):
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset, e.g. {text}+09:00")
    return when


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Load a performance's seat map from CSV into libconcert and print availability.")
    parser.add_argument("csv", nargs="?", help="seat map: columns seat_no, grade, price")
    parser.add_argument("--store", default="memory:",
                        help='store URI, e.g. memory:/var/lib/concert (default "memory:", a dry run)')
    parser.add_argument("--concert-id", type=int, help="add the performance to this concert")
    parser.add_argument("--title", help="title of the new concert (default: the CSV file name)")
    parser.add_argument("--starts-at", type=parse_time,
                        help="start of the performance, ISO 8601 with offset (default: in 30 days)")
    parser.add_argument("--venue", default="", help="venue of the performance")
    parser.add_argument("--schedule-id", type=int,
                        help="only print the availability of this performance (no CSV)")
    args = parser.parse_args(argv)
    if (args.csv is None) == (args.schedule_id is None):
        parser.error("give a CSV file to load, or --schedule-id to show")

    try:
        seats = read_seats(args.csv) if args.csv else None
    except (OSError, CsvError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    try:
        with concert.Engine(args.store) as engine:
            schedule_id = args.schedule_id
            if seats is not None:
                now = datetime.datetime.now(datetime.timezone.utc)
                concert_id = args.concert_id
                if concert_id is None:
                    title = args.title or args.csv.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                    concert_id = engine.add_concert(title, now, now + datetime.timedelta(days=90))
                starts_at = args.starts_at or now + datetime.timedelta(days=30)
                schedule_id = engine.add_schedule(concert_id, starts_at, args.venue)
                engine.add_seats(schedule_id, seats)
                print(f"loaded {len(seats)} seats from {args.csv} into concert {concert_id}, "
                      f"schedule {schedule_id}")
            print_availability(engine, schedule_id)
    except concert.Error as e:
        print(f"error: {e} ({e.name})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
