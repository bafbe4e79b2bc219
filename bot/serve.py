"""Start Rasa (``rasa run ...``) with one performance fix; runs in the bot environment.

Rasa 3.6 validates every action-server response with ``jsonschema.validate(result, schema)``,
which re-checks the (large, constant) events schema against the JSON-Schema meta-schema on
every call: measured with py-spy, that was 47% of the Rasa server's CPU per chat turn. Here the
schema is checked once and one validator is reused; responses are validated exactly as before
and an invalid response still raises the same ValidationError with Rasa's message.

Usage: python serve.py run --model ... (any ``rasa`` arguments).
"""

from typing import Any


def _install_cached_action_validation() -> None:
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    original = RemoteAction._validate_action_result

    def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        try:
            validator.validate(result)
        except ValidationError:
            return original(self, result)  # Rasa's own path builds its error message
        return True

    RemoteAction._validate_action_result = validate_action_result


if __name__ == "__main__":
    from rasa.__main__ import main

    _install_cached_action_validation()
    main()
