from plain import models


@models.register_model
class User(models.Model):
    email = models.EmailField()
    is_admin = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.email
