from conftest import table_counts, wait_until


def test_worker_runs_a_job(worker):
    from app.jobs import RecordJob
    from app.records.models import Execution

    RecordJob("hello").run_in_worker()
    process = worker()
    wait_until(lambda: Execution.objects.filter(key="hello").exists(), message="job to run")
    wait_until(lambda: table_counts()["results"] == 1)
    assert process.stop() == 0
