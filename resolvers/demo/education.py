"""Demo data of health education: a published article, a draft, a published video with a question and the
chief's reply, days in the past."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from models.education import Article, Comment, ContentKind, PublicationStatus, Video
from resolvers.education import render_markdown


async def seed_education(
    session: AsyncSession, *, users: dict[str, int], department_id: int, earlier: datetime
) -> Article:
    """The demo content; the published article (a learning task's material)."""
    body = "## 便血的常见原因\n\n- **痔疮**：鲜红色，便后滴血\n- 肛裂：伴排便疼痛\n\n出现黑便或持续便血请及时就诊。"
    published = Article(
        title="便血的常见原因",
        summary="鲜血、暗红与黑便分别提示什么",
        body_markdown=body,
        body_html=render_markdown(body),
        keywords="便血,肛肠",
        status=PublicationStatus.PUBLISHED.value,
        author_id=users["chief"],
        department_id=department_id,
        published_at=earlier,
        view_count=12,
        created_at=earlier,
        updated_at=earlier,
    )
    draft = Article(
        title="结肠镜检查前的准备",
        body_markdown="检查前一天低渣饮食……",
        body_html=render_markdown("检查前一天低渣饮食……"),
        author_id=users["chief"],
        department_id=department_id,
    )
    video = Video(
        title="坐浴的正确方法",
        description="温水坐浴的水温、时长与注意事项",
        video_url="https://media.example.org/demo/sitz-bath.mp4",
        duration_seconds=150,
        status=PublicationStatus.PUBLISHED.value,
        author_id=users["chief"],
        department_id=department_id,
        published_at=earlier,
        created_at=earlier,
        updated_at=earlier,
    )
    session.add_all([published, draft, video])
    await session.flush()
    question = Comment(
        target_kind=ContentKind.VIDEO.value,
        target_id=video.id,  # type: ignore[arg-type]
        commenter_id=users["patient"],
        body="请问坐浴水温多少合适？",
        created_at=earlier,
    )
    session.add(question)
    await session.flush()
    session.add(
        Comment(
            target_kind=ContentKind.VIDEO.value,
            target_id=video.id,  # type: ignore[arg-type]
            parent_id=question.id,
            commenter_id=users["chief"],
            body="40℃左右，每次10-15分钟。",
            created_at=earlier + timedelta(hours=1),
        )
    )
    return published
