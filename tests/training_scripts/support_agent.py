"""A support agent answering from its FAQ: an MLflow ``ResponsesAgent`` logged from code, as MLflow's guide
to agents logs one. A question ``wait for PATH`` adds a line to ``PATH.asked``, then waits until ``PATH``
exists (an agent waiting on a slow service), at most a minute."""

import os
import time

import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse

FAQ = {
    "refund": "Refunds are paid within 5 working days.",
    "password": "Use 'Forgot password' on the sign-in page.",
    "hours": "We answer from 8:00 to 18:00, Monday to Friday.",
}


class SupportAgent(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        question = request.input[-1].content
        question = question if isinstance(question, str) else ""
        if question.startswith("wait for "):
            path = question.removeprefix("wait for ")
            with open(f"{path}.asked", "a") as asked:
                asked.write("asked\n")
            deadline = time.monotonic() + 60
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.05)
        answer = next(
            (a for topic, a in FAQ.items() if topic in question.lower()), "Let me pass you to a human."
        )
        return ResponsesAgentResponse(output=[self.create_text_output_item(text=answer, id="answer-1")])


mlflow.models.set_model(SupportAgent())
