from plain import models


@models.register_model
class User(models.Model):
    email = models.EmailField(required=False)
    welcomed_at = models.DateTimeField(required=False, allow_null=True)

    def __str__(self) -> str:
        return self.email
