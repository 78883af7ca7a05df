# Indexes for the audit log: each filter of the page gets an index ending in
# (created_at, id), the keyset order, so every page reads one page of rows.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='sendrecord',
            name='send_app_created',
        ),
        migrations.RemoveIndex(
            model_name='sendrecord',
            name='send_user_created',
        ),
        migrations.RemoveIndex(
            model_name='sendrecord',
            name='send_outcome_created',
        ),
        migrations.RemoveIndex(
            model_name='sendrecord',
            name='send_room_created',
        ),
        migrations.AlterField(
            model_name='sendrecord',
            name='app',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='sends', to='messaging.providerapp'),
        ),
        migrations.AlterField(
            model_name='sendrecord',
            name='created_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name='sendrecord',
            name='user',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='sends', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(fields=['created_at', 'id'], name='send_created_id'),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(fields=['app', 'created_at', 'id'], name='send_app_created'),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(fields=['user', 'created_at', 'id'], name='send_user_created'),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(fields=['outcome', 'created_at', 'id'], name='send_outcome_created'),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(fields=['room_id', 'created_at', 'id'], name='send_room_created'),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(fields=['sender', 'created_at', 'id'], name='send_sender_created'),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(fields=['kind', 'created_at', 'id'], name='send_kind_created'),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(condition=models.Q(('error_code__isnull', False)), fields=['error_code', 'created_at', 'id'], name='send_error_created'),
        ),
        migrations.AddIndex(
            model_name='sendrecord',
            index=models.Index(condition=models.Q(('msg_seq__isnull', False)), fields=['msg_seq'], name='send_msg_seq'),
        ),
    ]
