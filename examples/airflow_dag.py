"""An example Airflow DAG: tastebud's trending and popularity jobs, one CLI call per interval.

tastebud does not depend on Airflow; copy this file into your DAGs folder. Each task runs
``tastebud jobs run NAME --start {{ data_interval_start }} --end {{ data_interval_end }}``,
so Airflow owns scheduling, catch-up and backfills (``airflow dags backfill``), while
tastebud keeps its own per-attempt history, lock, timeout and retries of transient errors.
Runs are idempotent over their interval, so Airflow's own retries are safe too.

Exit codes: 0 done, 1 the job failed (alerted), 2 bad usage, 3 store unreachable, 4 already
running elsewhere (Airflow retries it later), 5 refused: too little data in the interval,
nothing published, the previous result keeps serving (``skip_on_exit_code`` marks the task
skipped rather than failed).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG  # type: ignore[import-not-found]
from airflow.operators.bash import BashOperator  # type: ignore[import-not-found]

# The environment the CLI reads (or a tastebud.toml next to the worker).
ENV = {
    "TASTEBUD_DATABASE_URL": "postgresql://tastebud@db.internal:5432/tastebud",
    "TASTEBUD_ONLINE_URL": "redis://cache.internal:6379/0",
    "TASTEBUD_ARTIFACTS_URL": "s3://tastebud-artifacts/prod",
}
RUN = (
    "tastebud jobs run {job} "
    "--start {{{{ data_interval_start.isoformat() }}}} "
    "--end {{{{ data_interval_end.isoformat() }}}}"
)

default_args = {"retries": 2, "retry_delay": timedelta(minutes=2), "append_env": True}
REFUSED = 5  # `tastebud jobs run` exit code: too little data, the previous result stays

with DAG(
    dag_id="tastebud_trending",
    schedule="0 * * * *",  # hourly, like `tastebud jobs list` says
    start_date=datetime(2025, 1, 1),
    catchup=False,  # only "now" matters for trending; backfill explicitly if needed
    max_active_runs=1,
    default_args=default_args,
) as trending_dag:
    BashOperator(
        task_id="trending",
        bash_command=RUN.format(job="trending"),
        env=ENV,
        execution_timeout=timedelta(minutes=15),
        skip_on_exit_code=REFUSED,
    )

with DAG(
    dag_id="tastebud_popularity",
    schedule="*/5 * * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
) as popularity_dag:
    BashOperator(
        task_id="popularity",
        bash_command=RUN.format(job="popularity"),
        env=ENV,
        execution_timeout=timedelta(minutes=5),
        skip_on_exit_code=REFUSED,
    )
