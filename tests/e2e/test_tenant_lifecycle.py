# tests/e2e/test_tenant_lifecycle.py
import pytest
import httpx

BASE_URL = "http://localhost:10201/api"
WEBHOOK_SECRET = "webhook_secret_12345"

@pytest.mark.asyncio
async def test_tenant_lifecycle():
    """테넌트 생명주기 테스트: 생성 → 사용 → 삭제"""

    async with httpx.AsyncClient() as client:
        # 1. 테넌트 생성
        response = await client.post(
            f"{BASE_URL}/tenant/create",
            json={
                "tenant_id": "e2e_test",
                "tenant_name": "E2E 테스트",
                "admin_email": "e2e@test.com",
                "application_id": 999,
                "application_kind": "demo"
            },
            headers={"X-API-Key": "test_key"}
        )
        assert response.status_code == 200
        assert response.json()["success"] == True

        # 2. 테넌트 API 사용
        response = await client.get(
            f"{BASE_URL}/health",
            headers={"X-Tenant-ID": "e2e_test"}
        )
        assert response.status_code == 200

        # 3. Webhook으로 테넌트 삭제
        response = await client.post(
            f"{BASE_URL}/tenant/webhook/user-deleted",
            json={
                "event": "user.deleted",
                "user_id": 999,
                "email": "e2e@test.com",
                "deleted_at": "2026-01-08T10:00:00"
            },
            headers={"X-Webhook-Secret": WEBHOOK_SECRET}
        )
        assert response.status_code == 200
        assert "e2e_test" in response.json()["deleted_tenants"]
