"""A support agent that asks a language model's API over HTTP, as agents call OpenAI's: an MLflow
``ResponsesAgent`` logged from code, reading the API's address and key from its environment as it loads."""

import json
import os
import urllib.request

import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse


class ServiceAgent(ResponsesAgent):
    def __init__(self) -> None:
        self.url = os.environ["SUPPORT_LLM_URL"]
        self.key = os.environ["SUPPORT_LLM_KEY"]

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        asked = urllib.request.Request(
            self.url,
            data=json.dumps({"question": request.input[-1].content}).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(asked, timeout=10) as answer:
            text = json.load(answer)["answer"]
        return ResponsesAgentResponse(output=[self.create_text_output_item(text=text, id="answer-1")])


mlflow.models.set_model(ServiceAgent())
