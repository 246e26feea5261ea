from plain import models


@models.register_model
class Execution(models.Model):
    """One row per time a test job's run() executed (side effects the tests count)."""

    key = models.CharField(max_length=255)
    job_class = models.CharField(max_length=255, required=False)
    pid = models.IntegerField(default=0)
    value = models.JSONField(default=dict, required=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["key"], name="records_execution_key")]
