"""A support agent's training, as MLflow's guide to agents writes one: the agent is evaluated on a few
questions and logged from its code file, ``agent.py``, with a question as its input example."""

import mlflow
from agent import FAQ, SupportAgent

QUESTIONS = [
    ("How long does a refund take?", "refund"),
    ("I forgot my password", "password"),
    ("What are your opening hours?", "hours"),
    ("My parcel never arrived", None),
]

mlflow.set_experiment("support-agent")
with mlflow.start_run():
    agent = SupportAgent()
    right = 0
    for question, topic in QUESTIONS:
        answer = agent.predict({"input": [{"role": "user", "content": question}]})
        text = answer.output[0].content[0]["text"]
        right += text == FAQ[topic] if topic else "human" in text
    mlflow.log_metric("accuracy", right / len(QUESTIONS))
    mlflow.pyfunc.log_model(
        name="agent",
        python_model="agent.py",
        code_paths=["agent.py"],
        input_example={"input": [{"role": "user", "content": "How do I get a refund?"}]},
    )
