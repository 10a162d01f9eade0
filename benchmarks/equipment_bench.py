"""Equipment at trust scale on SQLite: 50,000 assets and 200,000 past loans in a temporary database.

Prints p50/p95/p99 (ms) for asset search, the overdue list (its first page of 100, of 500 overdue)
and closing a stock-take of one location
(about 500 assets, 450 of them scanned). Budget: p95 under 50 ms each (DESIGN.md section 9).

    /work/main/.venv/bin/python benchmarks/equipment_bench.py [--assets 50000] [--loans 200000] [--runs 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from app import create_app  # noqa: E402
from app.clock import local_today  # noqa: E402
from app.database import write_intent  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import AssetSearchTerm, Loan, SchoolAsset, StockTakeScan, User, UserRole  # noqa: E402
from app.services import assets, loans, stocktakes  # noqa: E402

KINDS = ("camera", "tablet", "work_mobile", "laptop", "voice_recorder", "other")
WORDS = ("Canon", "iPad", "Galaxy", "Latitude", "ThinkPad", "Sony", "Nikon", "Chromebook", "Pixel", "Zoom")
LOCATIONS = [f"Room {n:03d}" for n in range(100)]
STAFF = 500


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def seed(asset_count: int, loan_count: int, rng: random.Random, scattered: bool = False) -> User:
    """Bulk-load the data (not through the services: the audit chain is not what is measured here)."""
    now = datetime.now(UTC)
    users = [
        {"email": f"staff{n}@bench.test", "display_name": f"Staff {n:04d}", "is_active_account": True, "created_at": now}
        for n in range(STAFF)
    ]
    db.session.execute(sa.insert(User), users)
    ids = list(db.session.scalars(sa.select(User.id).order_by(User.id)))
    office_id = ids[0]
    db.session.execute(
        sa.insert(UserRole), [{"user_id": i, "role": "staff"} for i in ids] + [{"user_id": office_id, "role": "office"}]
    )
    rows = []
    for n in range(asset_count):
        kind = KINDS[n % len(KINDS)]
        word = WORDS[n % len(WORDS)]
        rows.append(
            {
                "tag": f"{kind[:3].upper()}-{n:05d}",
                "name": f"{word} {kind.replace('_', ' ')} {n}",
                "kind": kind,
                "make": word,
                "model": f"M{n % 37}",
                "serial": f"SN{rng.randrange(10**9):09d}",
                "recording_capable": True,
                "status": "available",
                # A school adds a room's equipment together (one import per room); --scattered deals
                # them round-robin instead, the worst case for the pages a stock-take close rewrites.
                "home_location": LOCATIONS[n % len(LOCATIONS)] if scattered else LOCATIONS[n * len(LOCATIONS) // asset_count],
                "notes": "",
                "created_at": now,
                "updated_at": now,
            }
        )
    for start in range(0, len(rows), 5000):
        db.session.execute(sa.insert(SchoolAsset), rows[start : start + 5000])
    asset_ids = list(db.session.scalars(sa.select(SchoolAsset.id).order_by(SchoolAsset.id)))
    terms = [
        {"asset_id": asset_id, "term": term}
        for asset_id, row in zip(asset_ids, rows, strict=True)
        for term in assets.terms_for(row["tag"], row["name"], row["make"], row["model"], row["serial"], row["home_location"])
    ]
    for start in range(0, len(terms), 20000):
        db.session.execute(sa.insert(AssetSearchTerm), terms[start : start + 20000])
    past = []
    for _ in range(loan_count):
        out = now - timedelta(days=rng.randrange(30, 1500), minutes=rng.randrange(600))
        past.append(
            {
                "asset_id": rng.choice(asset_ids),
                "borrower_id": rng.choice(ids),
                "issued_by_id": office_id,
                "out_at": out,
                "due_on": (out + timedelta(days=7)).date(),
                "purpose": "",
                "condition_out": "",
                "returned_at": out + timedelta(days=rng.randrange(1, 10)),
                "received_by_id": office_id,
                "condition_in": "",
                "damaged": False,
            }
        )
    for start in range(0, len(past), 10000):
        db.session.execute(sa.insert(Loan), past[start : start + 10000])
    # 2,000 open loans, a quarter of them overdue.
    today = local_today()
    open_assets = rng.sample(asset_ids, 2000)
    open_rows = [
        {
            "asset_id": asset_id,
            "borrower_id": rng.choice(ids),
            "issued_by_id": office_id,
            "out_at": now - timedelta(days=10),
            "due_on": today - timedelta(days=rng.randrange(1, 20))
            if i % 4 == 0
            else today + timedelta(days=rng.randrange(0, 20)),
            "purpose": "",
            "condition_out": "",
            "condition_in": "",
            "damaged": False,
        }
        for i, asset_id in enumerate(open_assets)
    ]
    db.session.execute(sa.insert(Loan), open_rows)
    db.session.execute(sa.update(SchoolAsset).where(SchoolAsset.id.in_(open_assets)).values(status="on_loan"))
    db.session.commit()
    db.session.execute(sa.text("ANALYZE"))
    db.session.commit()
    return db.session.get(User, office_id)


def timed(runs: int, action) -> list[float]:
    samples = []
    for n in range(runs):
        started = time.perf_counter()
        action(n)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def collect(asset_count: int, loan_count: int, runs: int, stocktake_count: int, scattered: bool) -> dict[str, list[float]]:
    """Seed a scratch database and time search, the overdue list and stock-take close (ms samples)."""
    rng = random.Random(20261125)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "INSTANCE_PATH": folder, "SECRET_KEY": "bench", "TESTING": True}
        )
        with app.app_context():
            upgrade(revision="head")
            started = time.perf_counter()
            office = seed(asset_count, loan_count, rng, scattered)
            layout = "dealt round-robin to 100 rooms" if scattered else "added room by room, 100 rooms"
            print(
                f"seeded {asset_count:,} assets ({layout}), {loan_count:,} past loans and 2,000 open loans in {time.perf_counter() - started:.1f} s"
            )

            terms = ["CAM-0", "LAP-12", "ipad", "galaxy", "sony voice", "SN12345", "room", "thinkpad laptop 4"]

            def search(n: int) -> None:
                term = terms[n % len(terms)]
                found = assets.search_assets(db.session, term, limit=51)
                if n % 3 == 0:
                    assets.search_assets(db.session, "", kind=KINDS[n % len(KINDS)], location=LOCATIONS[n % 100], limit=51)
                db.session.rollback()
                assert found is not None

            def overdue(n: int) -> None:
                found = loans.overdue_loans(db.session)
                rendered = [(loan.asset.tag, loan.borrower.display_name, loan.due_on) for loan in found]
                db.session.rollback()
                assert len(rendered) == 100  # the first page of 500 overdue loans

            results = {"asset search": timed(runs, search), "overdue list": timed(runs, overdue)}

            close_samples = []
            for n in range(stocktake_count):
                location = LOCATIONS[n % len(LOCATIONS)]
                with write_intent():
                    take = stocktakes.start_stocktake(db.session, office, location)
                    tags = list(
                        db.session.execute(
                            sa.select(SchoolAsset.id, SchoolAsset.tag).where(SchoolAsset.home_location == location)
                        )
                    )
                    seen = [*rng.sample(tags, int(len(tags) * 0.9)), (None, f"STRAY-{n}")]
                    now = datetime.now(UTC)
                    db.session.execute(
                        sa.insert(StockTakeScan),
                        [
                            {
                                "stocktake_id": take.id,
                                "tag": tag,
                                "asset_id": asset_id,
                                "condition": "",
                                "scanned_by_id": office.id,
                                "scanned_at": now,
                            }
                            for asset_id, tag in seen
                        ],
                    )
                    db.session.commit()
                with write_intent():
                    started = time.perf_counter()
                    counts = stocktakes.close_stocktake(db.session, office, take.id)
                    db.session.commit()
                    close_samples.append((time.perf_counter() - started) * 1000)
                assert counts["present"] + counts["missing"] + counts["on_loan"] == len(tags)
            results["stock-take close (~500 assets)"] = close_samples
            db.engine.dispose()
    return results


def measure(
    asset_count: int = 50_000, loan_count: int = 200_000, runs: int = 200, stocktake_count: int = 60, scattered: bool = False
) -> list:
    from benchmarks.common import Figure

    figures = []
    for name, samples in collect(asset_count, loan_count, runs, stocktake_count, scattered).items():
        p50, p95, p99 = percentiles(samples)
        prefix = f"[sqlite, {asset_count:,} assets, {loan_count:,} loans] {name}"
        figures += [
            Figure(f"{prefix} p50", p50, "ms"),
            Figure(f"{prefix} p95", p95, "ms", 50),
            Figure(f"{prefix} p99", p99, "ms"),
        ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=50_000)
    parser.add_argument("--loans", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--stocktakes", type=int, default=60)
    parser.add_argument("--scattered", action="store_true", help="deal assets to rooms round-robin (worst case for close)")
    args = parser.parse_args()
    results = collect(args.assets, args.loans, args.runs, args.stocktakes, args.scattered)
    print(f"{'operation':34} {'runs':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  budget p95 < 50 ms")
    for name, samples in results.items():
        p50, p95, p99 = percentiles(samples)
        print(f"{name:34} {len(samples):>5} {p50:8.2f} {p95:8.2f} {p99:8.2f}  {'ok' if p95 < 50 else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
