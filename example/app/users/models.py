from plain import models


@models.register_model
class User(models.Model):
    email = models.EmailField()
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


@models.register_model
class Outbox(models.Model):
    """Stands in for an email provider: every 'sent' message lands here."""

    user = models.ForeignKey(User, on_delete=models.CASCADE)
    subject = models.CharField(max_length=200)
    sent_at = models.DateTimeField(auto_now_add=True)
