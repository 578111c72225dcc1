"""A chat model that answers each conversation with its last message in capitals: an MLflow ``ChatModel``
logged from code."""

import mlflow
from mlflow.pyfunc import ChatModel
from mlflow.types.llm import ChatChoice, ChatCompletionResponse, ChatMessage


class Shout(ChatModel):
    def predict(self, context, messages, params):
        answer = ChatMessage(role="assistant", content=str(messages[-1].content).upper())
        return ChatCompletionResponse(
            id="chat-1", model="shout", created=0, choices=[ChatChoice(index=0, message=answer)]
        )


mlflow.models.set_model(Shout())
