"""Console login, logout, who am I, and (admins only) the console's users.

POST /console/api/login   {"email", "password"} -> 200 {"user": {"email", "role"}, "csrf_token"}
                          and the session cookie; 401 for a wrong e-mail or password (the same
                          answer, and the same work, whether or not the account exists);
                          429 after 5 failures for one e-mail from one address in 15 minutes
POST /console/api/logout  -> 204, the session is deleted and the cookie cleared
GET  /console/api/me      -> {"email", "role", "csrf_token"}
GET  /console/api/users   -> {"items": [{"id", "email", "role", "created_at"}]}       admin
POST /console/api/users   {"email", "password", "role"} -> 201 the user; 400 refused   admin
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from smartmkt.console import sessions, users
from smartmkt.security import login_limit
from smartmkt.web.console_access import Admin, Backend, LoggedIn

router = APIRouter(prefix="/console/api", tags=["console"])


class Credentials(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class NewUser(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    role: str = Field(default="marketer", max_length=16)


def _user(user: users.User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role, "created_at": user.created_at.isoformat()}


@router.post("/login")
def login(body: Credentials, request: Request, console: Backend) -> Any:
    settings = console.settings
    key = login_limit.login_key(body.email, request.client.host if request.client else "")
    wait = login_limit.take_attempt(console.store, key, settings.login_max_failures, settings.login_window_s)
    if wait:  # before any password work (smartmkt.security.login_limit)
        return JSONResponse(
            {"error": f"too many failed logins; try again in {wait} s"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    user = users.authenticate(console.store, body.email, body.password)
    if user is None:  # the attempt is already counted (take_attempt)
        return JSONResponse({"error": "wrong e-mail or password"}, status_code=401)
    login_limit.clear(console.store, key)
    token, session = sessions.start(console.store, user, console.session_lifetime)
    response = JSONResponse(
        {"user": {"email": user.email, "role": user.role}, "csrf_token": session.csrf_token},
        headers={"Cache-Control": "no-store"},
    )
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=int(console.session_lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=console.settings.console_secure_cookie,
    )
    return response


@router.post("/logout", status_code=204)
def logout(request: Request, session: LoggedIn, console: Backend) -> Response:
    sessions.end(console.store, request.cookies.get(sessions.COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(
        sessions.COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=console.settings.console_secure_cookie,
    )
    return response


@router.get("/me")
def me(session: LoggedIn, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    return {"email": session.user.email, "role": session.user.role, "csrf_token": session.csrf_token}


@router.get("/users")
def list_users(_admin: Admin, console: Backend) -> dict[str, Any]:
    return {"items": [_user(u) for u in users.list_users(console.store)]}


@router.post("/users", status_code=201)
def create_user(body: NewUser, _admin: Admin, console: Backend) -> Any:
    try:
        user = users.create_user(console.store, body.email, body.password, body.role)
    except users.UserError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return _user(user)
