"""Site probe: recorded HTCondor slot and OSG glidein ads, Slurm variables, EC2 IMDSv2 from a local server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from repro_mlflow.fingerprint import site, to_tags

from tests.services import free_port

from .helpers import FIX, fixture_text

GLIDEIN_XML = "glideinwms_condor_status-xml_cms_glideins_FI_HIP_T2.xml"


def test_condor_slot_ads_long_form():
    ads = site.parse_classads(fixture_text("htcondor", "htcondor_condor_status-l_8slot_8.9.12_fedora33.ads"))
    assert len(ads) == 8 and ads[0]["Name"] == "slot1@gthain.localdomain"
    condor = site.probe_condor(fixture_text("htcondor", "htcondor_condor_status-l_8slot_8.9.12_fedora33.ads"), None, {})
    m = condor["machine"]
    assert (m["CpuFamily"], m["CpuModelNumber"], m["has_avx2"], m["OpSysAndVer"]) == ("6", "142", "true", "Fedora33")
    assert m["Machine"] == "gthain.localdomain" and "MyAddress" not in m  # only allow-listed attributes


@pytest.mark.parametrize("name,slot,kind", [
    ("htcondor_condor_status-l_partitionable8core_8.2.6.ads", "slot1@ingwe.cs.wisc.edu", "Partitionable"),
    ("htcondor_condor_status-l_basic4slot_8.2.6.ads", "slot1@ingwe.cs.wisc.edu", "Static"),
])
def test_condor_8_2_ads(name, slot, kind):
    m = site.probe_condor(fixture_text("htcondor", name), None, {})["machine"]
    assert m["Name"] == slot and m["OpSysAndVer"] == "RedHat6" and m.get("SlotType") == kind


def test_osg_glidein_ads_from_the_machine_ad_file(tmp_path):
    ad_file = FIX / "htcondor" / GLIDEIN_XML
    ads = site.parse_classads(ad_file.read_text())
    assert len(ads) == 7 and all(a["GLIDEIN_Site"] == "HIP" for a in ads)
    env = {"_CONDOR_MACHINE_AD": str(ad_file)}
    s = site.probe_site(env, root=tmp_path)
    m = s["condor"]["machine"]
    assert (m["GLIDEIN_Site"], m["GLIDEIN_ResourceName"], m["GLIDEIN_CMSSite"]) == ("HIP", "FI_HIP_T2", "T2_FI_HIP")
    assert s["site"] == "HIP"
    # attributes whose names look like credentials are never kept, even if present in the ad
    assert "GLIDEIN_CredentialIdentifier" in ads[0] and "GLIDEIN_CredentialIdentifier" not in m
    assert ads[0]["GLIDEIN_CredentialIdentifier"] not in json.dumps(s)
    tags = to_tags({"site": s})
    assert tags["repro.site"] == "HIP" and tags["repro.condor.GLIDEIN_Site"] == "HIP"
    assert tags["repro.condor.GLIDEIN_ResourceName"] == "FI_HIP_T2"


def test_job_ad_written_by_htcondor_bindings(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDOR_CONFIG", "/dev/null")
    classad2 = pytest.importorskip("classad2")
    ad = classad2.ClassAd({"ClusterId": 4711, "ProcId": 3, "RequestGpus": 1,
                           "ContainerImage": "docker://tensorflow/tensorflow:2.8.0-gpu",
                           "Environment": "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIexample", "Args": "--token abc123456"})
    job_file = tmp_path / ".job.ad"
    job_file.write_text(ad.printOld())
    env = {"_CONDOR_JOB_AD": str(job_file),
           "_CONDOR_MACHINE_AD": str(FIX / "htcondor" / "htcondor_condor_status-l_8slot_8.9.12_fedora33.ads")}
    s = site.probe_site(env, root=tmp_path)
    assert s["condor"]["job"] == {"ClusterId": "4711", "ProcId": "3", "RequestGpus": "1",
                                  "ContainerImage": "docker://tensorflow/tensorflow:2.8.0-gpu"}
    assert "wJalrXUtnFEMIexample" not in json.dumps(s) and "abc123456" not in json.dumps(s)
    assert to_tags({"site": s})["repro.condor.job_id"] == "4711.3"


def test_slurm_variables_and_site():
    env = {"SLURM_CLUSTER_NAME": "expanse", "SLURM_JOB_PARTITION": "gpu-shared", "SLURMD_NODENAME": "exp-7-59",
           "SLURM_JOB_ID": "123456", "SLURM_JOB_ACCOUNT": "abc123", "SLURM_JOB_USER": "someone"}
    s = site.probe_site(env, root="/nonexistent")
    assert s["site"] == "expanse"
    assert s["slurm"] == {k: env[k] for k in ("SLURM_CLUSTER_NAME", "SLURM_JOB_PARTITION", "SLURMD_NODENAME", "SLURM_JOB_ID")}
    tags = to_tags({"site": s})
    assert (tags["repro.slurm.cluster"], tags["repro.slurm.partition"], tags["repro.slurm.node"],
            tags["repro.slurm.job_id"]) == ("expanse", "gpu-shared", "exp-7-59", "123456")


def test_no_site_signals_means_host_name():
    s = site.probe_site({}, root="/nonexistent")
    assert s["site"] == s["host"] and s["condor"] is None and s["slurm"] is None and s["ec2"] is None


# --- EC2 IMDSv2 from a real HTTP server on a free port, answering with AWS's mock values ---

class _Imds(BaseHTTPRequestHandler):
    token = "AQAEAFakeImdsSessionToken0123456789=="
    requests: list[tuple[str, str, dict]] = []

    def log_message(self, *a):
        pass

    def _send(self, code, body=""):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        self.requests.append(("PUT", self.path, dict(self.headers)))
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._send(200, self.token)
        self._send(400)

    def do_GET(self):
        self.requests.append(("GET", self.path, dict(self.headers)))
        if self.headers.get("X-aws-ec2-metadata-token") != self.token:
            return self._send(401)
        meta = self.server.meta
        for key, path in meta["paths"].items():
            if path == self.path and key in meta["values"]:
                return self._send(200, meta["values"][key])
        self._send(404)


@pytest.fixture
def imds():
    meta = json.loads(fixture_text("ec2", "MOCK_aemm-metadata-default-values.json"))["metadata"]
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), _Imds)
    srv.meta = meta
    _Imds.requests = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", meta["values"], _Imds.requests
    srv.shutdown()
    srv.server_close()


def test_ec2_imdsv2_token_then_get(imds, tmp_path):
    url, values, requests = imds
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": url}
    s = site.probe_site(env, root=tmp_path)
    assert s["ec2"] == {"instance_type": values["instance-type"], "availability_zone": values["placement-availability-zone"],
                        "region": values["placement-region"], "ami_id": values["ami-id"]}
    assert s["site"] == "us-east-1a"
    assert requests[0][:2] == ("PUT", "/latest/api/token")
    assert all(r[0] == "GET" and r[2].get("X-aws-ec2-metadata-token") == _Imds.token for r in requests[1:])
    assert not any("iam" in r[1] or "user-data" in r[1] for r in requests)  # never asks for credentials
    assert _Imds.token not in json.dumps(s)
    tags = to_tags({"site": s})
    assert tags["repro.ec2.instance_type"] == "m4.xlarge" and tags["repro.ec2.availability_zone"] == "us-east-1a"


def test_ec2_imds_v1_only_server_gives_nothing(imds, tmp_path):
    """A server that refuses the token PUT (IMDSv1-only or not IMDS): no data, no crash."""
    url, _, requests = imds
    assert site.probe_ec2(url + "/nothing-here") is None


def test_ec2_closed_port_is_fast():
    port = free_port()  # nothing listens there
    t = time.perf_counter()
    assert site.probe_ec2(f"http://127.0.0.1:{port}") is None
    assert time.perf_counter() - t < 0.5


def test_imds_only_asked_where_ec2_is_likely(tmp_path):
    assert site.imds_endpoint({}, root=tmp_path) is None  # no DMI, no hypervisor uuid: not EC2
    dmi = tmp_path / "sys/devices/virtual/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("Amazon EC2\n")
    assert site.imds_endpoint({}, root=tmp_path) == site.IMDS_DEFAULT
    assert site.imds_endpoint({"AWS_EC2_METADATA_DISABLED": "true"}, root=tmp_path) is None
    assert site.imds_endpoint({"REPRO_IMDS": "0"}, root=tmp_path) is None
    assert site.imds_endpoint({"REPRO_IMDS_ENDPOINT": "http://127.0.0.1:9"}, root="/nonexistent") == "http://127.0.0.1:9"
