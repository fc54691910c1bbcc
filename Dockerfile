FROM python:3.11-slim
WORKDIR /srv
CMD ["python3"]
